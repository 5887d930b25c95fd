"""The closing-note tables: every `ai.params` key of the schema and every SWAIG action, with status.

Theory of operation: data only. `PARAMS` classifies all 92 `AIParams` keys of the SDK's
`schema.json` (contract §3.1) as "honoured" (with the module that reads it) or
"accepted-ignored" (parsed leniently, no effect yet; a document using it still runs).
`ACTION_STATUS` does the same for the actions of contract §5. A unit test checks that the
table covers the schema exactly, so a new schema key cannot slip through unclassified.
Kernel entries reflect `mediaserver/agents/ai/config.py` at the time of writing.
"""

from __future__ import annotations

__all__ = ["ACTION_STATUS", "PARAMS"]

H, IGN = "honoured", "accepted-ignored"
K = "agents.ai.config"  # read by AiSessionConfig.from_params (turn timing, barge, greeting, LLM)
S = "swaig"

PARAMS: dict[str, tuple[str, str]] = {
    "acknowledge_interruptions": (IGN, ""),
    "ai_model": (H, K),
    "ai_name": (IGN, "pause modes not built"),
    "ai_volume": (IGN, ""),
    "app_name": (H, S + ".request: echoed in webhook and post-prompt bodies"),
    "asr_diarize": (IGN, ""),
    "asr_smart_format": (IGN, ""),
    "asr_speaker_affinity": (IGN, ""),
    "attention_timeout": (H, K),
    "attention_timeout_prompt": (H, K),
    "audible_debug": (IGN, ""),
    "audible_latency": (IGN, ""),
    "background_file": (IGN, ""),
    "background_file_loops": (IGN, ""),
    "background_file_volume": (IGN, ""),
    "barge_functions": (IGN, ""),
    "barge_match_string": (H, K),
    "barge_min_words": (H, K),
    "cache_mode": (IGN, ""),
    "conscience": (H, S + ".prompt.render_ai_prompt (the app must render with it)"),
    "conversation_id": (H, S + ".request: sent as conversation_id"),
    "conversation_sliding_window": (H, K),
    "convo": (H, K),
    "debug": (IGN, ""),
    "debug_webhook_level": (IGN, ""),
    "debug_webhook_url": (IGN, ""),
    "digit_terminators": (H, K),
    "digit_timeout": (H, K),
    "direction": (IGN, ""),
    "eleven_labs_similarity": (IGN, "no ElevenLabs"),
    "eleven_labs_stability": (IGN, "no ElevenLabs"),
    "enable_accounting": (IGN, ""),
    "enable_barge": (H, K),
    "enable_inner_dialog": (IGN, ""),
    "enable_pause": (IGN, ""),
    "enable_thinking": (IGN, ""),
    "enable_turn_detection": (
        H,
        K + " -> turn manager: smart-turn verdicts (test_ai_turn_detection.py)",
    ),
    "enable_vision": (IGN, "no video"),
    "end_of_speech_timeout": (H, K),
    "energy_level": (H, K),
    "first_word_timeout": (H, K),
    "function_wait_for_talking": (IGN, ""),
    "functions_on_no_response": (IGN, ""),
    "hard_stop_prompt": (IGN, ""),
    "hard_stop_time": (IGN, ""),
    "hold_music": (IGN, ""),
    "hold_on_process": (IGN, ""),
    "inactivity_timeout": (H, K),
    "initial_sleep_ms": (IGN, ""),
    "inner_dialog_model": (IGN, ""),
    "inner_dialog_prompt": (IGN, ""),
    "inner_dialog_synced": (IGN, ""),
    "input_poll_freq": (IGN, ""),
    "interrupt_on_noise": (H, K),
    "interrupt_prompt": (IGN, ""),
    "languages_enabled": (IGN, ""),
    "llm_diarize_aware": (IGN, ""),
    "local_tz": (H, S + ".natives: check_time"),
    "max_emotion": (IGN, ""),
    "max_response_tokens": (H, K),
    "openai_asr_engine": (IGN, "local ASR"),
    "outbound_attention_timeout": (IGN, ""),
    "persist_global_data": (IGN, ""),
    "pom_format": (H, S + ".pom via render_ai_prompt (the app must render with it)"),
    "save_conversation": (IGN, ""),
    "speak_when_spoken_to": (IGN, ""),
    "speech_event_timeout": (H, K),
    "speech_gen_quick_stops": (IGN, ""),
    "speech_timeout": (H, K),
    "start_paused": (IGN, ""),
    "static_greeting": (H, K),
    "static_greeting_no_barge": (H, K),
    "summary_mode": (IGN, ""),
    "swaig_allow_settings": (H, S + ".actions: gates settings and ASR timing actions"),
    "swaig_allow_swml": (H, S + ".actions: gates SWML and transfer"),
    "swaig_post_conversation": (H, S + ".request: adds call_log/raw_call_log"),
    "swaig_post_swml_vars": (H, S + ".request: adds SWMLVars/SWMLCall (list = only those vars)"),
    "swaig_set_global_data": (H, S + ".actions: gates set/unset_global_data"),
    "thinking_model": (IGN, ""),
    "transfer_summary": (IGN, ""),
    "transparent_barge": (H, K),
    "transparent_barge_max_time": (IGN, ""),
    "tts_number_format": (IGN, ""),
    "turn_detection_timeout": (H, K + " -> silence before the first end-of-turn check (test_ai_turn_detection.py)"),
    "vad_config": (IGN, ""),
    "verbose_logs": (IGN, ""),
    "video_idle_file": (IGN, "no video"),
    "video_listening_file": (IGN, "no video"),
    "video_talking_file": (IGN, "no video"),
    "vision_model": (IGN, ""),
    "wait_for_user": (H, K),
    "wake_prefix": (IGN, ""),
}

# How each action of contract §5 reaches the call. "control" = an AiControl method with that
# meaning; "settings" = passed to AiControl.update_settings under its own name (the session
# applies the keys it knows: ASR timing today; voice, hints, background audio not yet).
ACTION_STATUS: dict[str, str] = {
    "SWML": "control.swml(doc, transfer) [swaig_allow_swml]",
    "transfer": "control.swml(transfer doc, True) [swaig_allow_swml]; summarize -> settings transfer_summary",
    "hangup": "control.hangup",
    "stop": "control.stop",
    "hold": "control.hold(seconds): int | '5m' | '1:30' | {timeout}; outside 1..900 -> 300",
    "say": "control.say",
    "set_global_data": "control.set_global_data [swaig_set_global_data]",
    "unset_global_data": "control.unset_global_data; an object replaces all [swaig_set_global_data]",
    "set_meta_data": "runner meta_data scope (meta_data_token, else URL, else name); sent as meta_data",
    "unset_meta_data": "runner meta_data scope",
    "toggle_functions": "runner function set (tools offered) + control.toggle_functions",
    "change_step": "ContextEngine (forced) + control.change_step + internal filler + step block as system message",
    "change_context": (
        "ContextEngine (forced) + control.change_context + enter/internal filler + "
        "isolated/reset as settings context_switch + block as system message"
    ),
    "context_switch": "settings context_switch + system_prompt as system message + user_prompt as user input",
    "user_input": "control.add_user_input",
    "settings": "settings (temperature clamped to 1.5) [swaig_allow_settings]",
    "end_of_speech_timeout": "settings -> turn manager [swaig_allow_settings]",
    "speech_event_timeout": "settings -> turn manager [swaig_allow_settings]",
    "wait_for_user": "settings",
    "playback_bg": "settings (accepted; session does not play background audio yet)",
    "stop_playback_bg": "settings (accepted)",
    "functions_on_speaker_timeout": "settings (accepted)",
    "extensive_data": "settings (accepted)",
    "back_to_back_functions": "settings (accepted)",
    "replace_in_history": "kept in ToolOutcome.actions; the session drops/replaces the pair after the turn",
    "add_dynamic_hints": "settings (accepted)",
    "clear_dynamic_hints": "settings (accepted)",
    "change_voice": "settings (accepted)",
    "user_event": "settings (accepted; logged)",
    "<unknown>": "logged and ignored (e.g. data_map_demo's start_playback)",
}
