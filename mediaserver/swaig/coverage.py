"""The coverage tables: every `ai.params` key of the SDK's schema and every SWAIG action, with status.

Theory of operation: data only, and each claim carries its evidence. An `Entry` is
(status, where, test):

* "honoured": the server acts on it; `where` names the module that reads it and `test` is the
  test id (`tests/...py::test_name`, or `::Class::test_name`) that exercises it through the
  real session, config or SWAIG runner. `tests/unit/swaig/test_coverage.py` parses each named
  file and fails when the function is missing, so a claim cannot outlive its test.
* "not-applicable": the key asks for something this server does not carry (video, a vendor's
  voice tuning, diarization of one mono leg); `test` holds the one-line reason.
* "not-yet": accepted (a document using it still runs) but it has no effect yet, or its effect
  has no test yet; `where` may say what is missing.

`PARAMS` classifies all 92 `AIParams` keys of `signalwire/schema.json` (contract §3.1);
`ACTION_STATUS` the actions of `swaig.actions.ACTIONS` (contract §5) plus `<unknown>`.
`python -m mediaserver.swaig.coverage_doc` writes both tables to `docs/swml-coverage.md`.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["ACTION_STATUS", "HONOURED", "NOT_APPLICABLE", "NOT_YET", "PARAMS", "STATUSES", "Entry"]

HONOURED, NOT_APPLICABLE, NOT_YET = "honoured", "not-applicable", "not-yet"
STATUSES = (HONOURED, NOT_APPLICABLE, NOT_YET)


class Entry(NamedTuple):
    status: str
    where: str  # the module that reads it (honoured), or what is missing (not-yet)
    test: str  # honoured: the test id; not-applicable: the reason; not-yet: ""


def _h(where: str, test: str) -> Entry:
    return Entry(HONOURED, where, test)


def _na(reason: str) -> Entry:
    return Entry(NOT_APPLICABLE, "", reason)


def _ny(where: str = "") -> Entry:
    return Entry(NOT_YET, where, "")


K = "agents.ai.config"  # AiSessionConfig.from_params
TURN = K + " -> pipeline.turn"
T = "agents.ai.timing"  # the opening, hard stop, gain and attention params
SESSION = "tests/scenario/test_ai_session.py::"
PARAMS_T = "tests/scenario/test_ai_params_coverage.py::"
DETECT = "tests/scenario/test_ai_turn_detection.py::"
SWAIG_T = "tests/unit/swaig/test_coverage_params.py::"
ACTIONS_T = "tests/unit/swaig/test_actions.py::"
OPS_T = "tests/scenario/test_ai_params_ops.py::"
NO_VIDEO = "the server carries audio only; no video stream to show or look at"

PARAMS: dict[str, Entry] = {
    "acknowledge_interruptions": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_acknowledge_interruptions_tells_the_llm_it_was_interrupted",
    ),
    "ai_model": _h(K + " -> LlmSettings.model", PARAMS_T + "test_ai_model_and_max_response_tokens_reach_the_llm"),
    "ai_name": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_enable_pause_offers_pause_conversation_and_the_ai_name_resumes",
    ),
    "ai_volume": _h(T + ": gain on every agent chunk", PARAMS_T + "test_ai_volume_is_gain_in_db_clamped_to_50"),
    "app_name": _h("swaig.request", SWAIG_T + "test_app_name_and_conversation_id_reach_the_webhook"),
    "asr_diarize": _na("one mono caller leg reaches the recognizer: there is nobody to tell apart"),
    "asr_smart_format": _h(
        "agents.ai.session_features -> pipeline.smart_format on every transcript",
        "tests/scenario/test_ai_params_media.py::test_asr_smart_format_writes_numbers_money_and_times_in_the_transcript",
    ),
    "asr_speaker_affinity": _na(
        "one mono caller leg and no speaker identification: every voice on it is heard as the caller's"
    ),
    "attention_timeout": _h(TURN, PARAMS_T + "test_attention_timeout_nudges_with_the_attention_prompt"),
    "attention_timeout_prompt": _h(K, PARAMS_T + "test_attention_timeout_nudges_with_the_attention_prompt"),
    "audible_debug": _h(
        "agents.ai.debug_hooks: says the function called", OPS_T + "test_audible_debug_says_the_function_being_called"
    ),
    "audible_latency": _h(
        "agents.ai.debug_hooks: says each answer's latency",
        OPS_T + "test_audible_latency_says_the_latency_of_each_answer",
    ),
    "background_file": _h(
        "agents.ai.background: a bed layer from the first frame to the end",
        "tests/scenario/test_ai_params_media.py::test_background_file_without_loops_plays_under_the_agent_until_the_ai_ends",
    ),
    "background_file_loops": _h(
        "agents.ai.background: plays in all; null = until the AI ends",
        "tests/scenario/test_ai_params_media.py::test_background_file_loops_its_count_at_its_volume_from_the_first_frame",
    ),
    "background_file_volume": _h(
        "agents.ai.background: layer gain in dB (-50..50)",
        "tests/scenario/test_ai_params_media.py::test_background_file_loops_its_count_at_its_volume_from_the_first_frame",
    ),
    "barge_functions": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_barge_functions_runs_a_function_while_the_caller_interrupts_only_when_on",
    ),
    "barge_match_string": _h(TURN, PARAMS_T + "test_barge_min_words_and_barge_match_string_decide_the_flush"),
    "barge_min_words": _h(TURN, PARAMS_T + "test_barge_min_words_and_barge_match_string_decide_the_flush"),
    "cache_mode": _h(
        "agents.ai.response_cache: identical requests replayed from the process cache",
        "tests/scenario/test_ai_params_media.py::test_cache_mode_answers_a_repeated_request_from_the_cache",
    ),
    "conscience": _h(
        K + " -> the system prompt of every request, after the base",
        "tests/scenario/test_ai_prompts_steps.py::test_prompt_and_post_prompt_expand_global_data_and_call_vars_with_conscience_after",
    ),
    "conversation_id": _h(
        "swaig.request; agents.ai.conversations: resumed by id",
        OPS_T + "test_save_conversation_keeps_it_and_the_next_call_with_the_id_resumes_it",
    ),
    "conversation_sliding_window": _h(K, PARAMS_T + "test_convo_seeds_the_history_and_the_sliding_window_cuts_it"),
    "convo": _h(K, PARAMS_T + "test_convo_seeds_the_history_and_the_sliding_window_cuts_it"),
    "debug": _h(
        "agents.ai.debug_hooks: ai_debug call events",
        OPS_T + "test_debug_and_verbose_logs_put_the_debug_events_in_the_call_log",
    ),
    "debug_webhook_level": _h(
        "agents.ai.debug_hooks", OPS_T + "test_debug_webhook_posts_the_platform_events_at_the_level_asked"
    ),
    "debug_webhook_url": _h(
        "agents.ai.debug_hooks: debug events POSTed",
        OPS_T + "test_debug_webhook_posts_the_platform_events_at_the_level_asked",
    ),
    "digit_terminators": _h(TURN, PARAMS_T + "test_digits_end_on_the_terminator_or_after_digit_timeout"),
    "digit_timeout": _h(TURN, PARAMS_T + "test_digits_end_on_the_terminator_or_after_digit_timeout"),
    "direction": _h(
        T + ": picks the attention timeout", PARAMS_T + "test_outbound_attention_timeout_on_outbound_calls"
    ),
    "eleven_labs_similarity": _na("ElevenLabs voice tuning; speech is synthesized locally (Piper), not by ElevenLabs"),
    "eleven_labs_stability": _na("ElevenLabs voice tuning; speech is synthesized locally (Piper), not by ElevenLabs"),
    "enable_accounting": _h(
        "agents.ai.accounting -> post-prompt total_*, /api/calls/{id}",
        OPS_T + "test_enable_accounting_reports_tokens_asr_seconds_and_tts_chars",
    ),
    "enable_barge": _h(TURN, PARAMS_T + "test_enable_barge_off_never_pauses_the_agent"),
    "enable_inner_dialog": _h(
        "agents.ai.reasoning: a second model notes each turn; the newest note joins every request",
        "tests/scenario/test_ai_params_media.py::test_inner_dialog_model_watches_and_its_note_reaches_the_next_request",
    ),
    "enable_pause": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_enable_pause_offers_pause_conversation_and_the_ai_name_resumes",
    ),
    "enable_thinking": _h(
        "agents.ai.reasoning: get_ideal_strategy tool, planned by the thinking model",
        "tests/scenario/test_ai_params_media.py::test_enable_thinking_offers_get_ideal_strategy_and_the_thinking_model_plans",
    ),
    "enable_turn_detection": _h(
        TURN + " + end-of-turn detector",
        DETECT + "test_without_a_detector_or_with_detection_off_the_fixed_silence_rule_stays",
    ),
    "enable_vision": _na(NO_VIDEO),
    "end_of_speech_timeout": _h(TURN, SESSION + "test_end_of_speech_timeout_and_preemptive_reply_on_the_next_tick"),
    "energy_level": _h(
        K + " -> agents.ai.listen energy floor", PARAMS_T + "test_energy_level_is_the_floor_a_quiet_caller_must_pass"
    ),
    "first_word_timeout": _h(TURN, PARAMS_T + "test_first_word_timeout_drops_a_short_wordless_burst"),
    "function_wait_for_talking": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_function_wait_for_talking_runs_the_function_after_the_filler_played",
    ),
    "functions_on_no_response": _h(
        "agents.ai.turn_taking" + " -> steering",
        "tests/scenario/test_ai_params_timing.py::test_functions_on_no_response_offers_tools_to_the_attention_prompt",
    ),
    "hard_stop_prompt": _h(T, PARAMS_T + "test_hard_stop_time_says_the_prompt_and_ends_the_ai"),
    "hard_stop_time": _h(T, PARAMS_T + "test_hard_stop_time_says_the_prompt_and_ends_the_ai"),
    "hold_music": _h(
        "agents.ai.controls: looped during a hold",
        "tests/scenario/test_ai_actions.py::test_hold_plays_hold_music_ignores_the_caller_and_resumes_at_its_timeout",
    ),
    "hold_on_process": _h(
        "agents.ai.background: hold_music loops while a SWAIG function runs",
        "tests/scenario/test_ai_params_media.py::test_hold_on_process_plays_hold_music_while_a_function_runs",
    ),
    "inactivity_timeout": _h(TURN, PARAMS_T + "test_inactivity_timeout_ends_the_ai"),
    "initial_sleep_ms": _h(T, PARAMS_T + "test_initial_sleep_ms_delays_the_first_words"),
    "inner_dialog_model": _h(
        "agents.ai.reasoning: the inner dialog's model",
        "tests/scenario/test_ai_params_media.py::test_inner_dialog_model_watches_and_its_note_reaches_the_next_request",
    ),
    "inner_dialog_prompt": _h(
        "agents.ai.reasoning: the inner dialog's system prompt",
        "tests/scenario/test_ai_params_media.py::test_inner_dialog_model_watches_and_its_note_reaches_the_next_request",
    ),
    "inner_dialog_synced": _h(
        "agents.ai.reasoning: analysis after the agent's turn, not beside the reply",
        "tests/scenario/test_ai_params_media.py::test_inner_dialog_model_watches_and_its_note_reaches_the_next_request",
    ),
    "input_poll_freq": _h(
        "swaig.input_poll: check_for_input polled (1..10 s)",
        "tests/scenario/test_swaig_session_features.py::test_check_for_input_is_polled_at_input_poll_freq_and_new_input_is_a_caller_turn",
    ),
    "interrupt_on_noise": _h(TURN, PARAMS_T + "test_interrupt_on_noise_flushes_the_agent_after_a_second_of_noise"),
    "interrupt_prompt": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_acknowledge_interruptions_tells_the_llm_it_was_interrupted",
    ),
    "languages_enabled": _h(
        "agents.ai.languages: the caller's language switches ASR, voice and LLM",
        OPS_T + "test_languages_switch_recognizer_voice_and_llm_when_the_caller_switches",
    ),
    "llm_diarize_aware": _na("one mono caller leg: there are no speaker labels for the LLM to use"),
    "local_tz": _h("swaig.natives (check_time)", SWAIG_T + "test_local_tz_is_the_zone_of_check_time"),
    "max_emotion": _na("Piper voices have no emotion control to cap"),
    "max_response_tokens": _h(
        K + " -> LlmSettings.max_tokens", PARAMS_T + "test_ai_model_and_max_response_tokens_reach_the_llm"
    ),
    "openai_asr_engine": _h(
        "pipeline.engines.openai_asr: the [llm] endpoint's /audio/transcriptions; local after a failure",
        "tests/scenario/test_ai_params_media.py::test_openai_asr_engine_sends_the_callers_audio_to_the_transcriptions_endpoint",
    ),
    "outbound_attention_timeout": _h(T, PARAMS_T + "test_outbound_attention_timeout_on_outbound_calls"),
    "persist_global_data": _h(
        "agents.ai.global_data <-> ai_agents_global_data",
        "tests/scenario/test_swaig_session_features.py::test_persist_global_data_false_neither_reads_nor_writes_the_variable",
    ),
    "pom_format": _h(
        K + " -> swaig.prompt POM renderer",
        "tests/scenario/test_ai_prompts_steps.py::test_pom_prompt_is_rendered_in_the_pom_format_asked",
    ),
    "save_conversation": _h(
        "agents.ai.conversations: kept under [swml] conversations_dir, summary posted",
        OPS_T + "test_save_conversation_keeps_it_and_the_next_call_with_the_id_resumes_it",
    ),
    "speak_when_spoken_to": _h(T, PARAMS_T + "test_wait_for_user_and_speak_when_spoken_to_keep_the_agent_quiet"),
    "speech_event_timeout": _h(TURN, PARAMS_T + "test_speech_event_timeout_ends_a_turn_whose_transcript_stopped"),
    "speech_gen_quick_stops": _h(
        K + " -> pipeline.text.ClauseSplitter: the first clauses cut at , ; :",
        PARAMS_T + "test_speech_gen_quick_stops_cuts_the_first_clauses_early_for_tts",
    ),
    "speech_timeout": _h(TURN, PARAMS_T + "test_speech_timeout_caps_a_long_utterance"),
    "start_paused": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_start_paused_answers_only_a_turn_with_the_wake_prefix_and_name",
    ),
    "static_greeting": _h(K, SESSION + "test_barge_in_pauses_in_the_decision_tick_and_history_keeps_the_heard_words"),
    "static_greeting_no_barge": _h(K, SESSION + "test_static_greeting_no_barge_is_not_paused"),
    "summary_mode": _h(
        'agents.ai.conversations: "string" resumes with the summary',
        OPS_T + "test_save_conversation_keeps_it_and_the_next_call_with_the_id_resumes_it",
    ),
    "swaig_allow_settings": _h("swaig.actions", ACTIONS_T + "test_permission_flags_deny"),
    "swaig_allow_swml": _h("swaig.actions", ACTIONS_T + "test_permission_flags_deny"),
    "swaig_post_conversation": _h(
        "swaig.session_record -> call_log/raw_call_log in webhook bodies",
        "tests/scenario/test_swaig_bodies.py::test_bodies_carry_the_real_conversation_swml_vars_and_post_prompt_times",
    ),
    "swaig_post_swml_vars": _h(
        "swaig.session_record -> SWMLVars/SWMLCall in webhook bodies",
        "tests/scenario/test_swaig_bodies.py::test_without_the_params_the_bodies_leave_the_log_and_vars_out",
    ),
    "swaig_set_global_data": _h("swaig.actions", ACTIONS_T + "test_permission_flags_deny"),
    "thinking_model": _h(
        "agents.ai.reasoning: the model get_ideal_strategy asks",
        "tests/scenario/test_ai_params_media.py::test_enable_thinking_offers_get_ideal_strategy_and_the_thinking_model_plans",
    ),
    "transfer_summary": _h(
        "swaig.actions -> agents.ai.swml_actions: every transfer summarized into ${transfer_summary}",
        "tests/scenario/test_ai_actions_more.py::test_transfer_summary_param_summarizes_every_transfer",
    ),
    "transparent_barge": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_transparent_barge_keeps_words_over_the_agent_for_the_next_turn",
    ),
    "transparent_barge_max_time": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_transparent_barge_max_time_answers_held_words_alone",
    ),
    "tts_number_format": _h(
        "agents.ai.session_features -> pipeline.phone_numbers before TTS",
        "tests/scenario/test_ai_params_media.py::test_tts_number_format_is_how_the_agent_speaks_phone_numbers",
    ),
    "turn_detection_timeout": _h(
        TURN, DETECT + "test_complete_turn_ends_turn_detection_timeout_after_speech_and_plays_the_preemptive_reply"
    ),
    "vad_config": _h(
        T + " -> listener confirm threshold, turn onset", PARAMS_T + "test_vad_config_sets_the_onset_and_the_threshold"
    ),
    "verbose_logs": _h(
        "agents.ai.debug_hooks: ai_debug events with their text",
        OPS_T + "test_debug_and_verbose_logs_put_the_debug_events_in_the_call_log",
    ),
    "video_idle_file": _na(NO_VIDEO),
    "video_listening_file": _na(NO_VIDEO),
    "video_talking_file": _na(NO_VIDEO),
    "vision_model": _na(NO_VIDEO),
    "wait_for_user": _h(K, PARAMS_T + "test_wait_for_user_and_speak_when_spoken_to_keep_the_agent_quiet"),
    "wake_prefix": _h(
        "agents.ai.turn_taking",
        "tests/scenario/test_ai_params_timing.py::test_start_paused_answers_only_a_turn_with_the_wake_prefix_and_name",
    ),
}

HANDLE_T = (
    "tests/scenario/test_agent_handle.py::test_the_handle_reports_appends_and_the_barge_in_cut_and_acts_on_the_session"
)

# How each action of contract §5 reaches the call. An action is honoured when a test shows its
# effect; the applier's own test (FakeControl) alone shows only that the control method is called.
# "not-yet" entries name the control method; their tests are being written with their effects.
NO_TEST = "; no test of its effect through the session yet"
ACTION_STATUS: dict[str, Entry] = {
    "SWML": _h(
        "agents.ai.swml_actions -> kernel.inline (run inline, or transfer) [swaig_allow_swml]",
        "tests/scenario/test_ai_swml_actions.py::test_connect_not_final_bridges_then_returns_to_the_same_conversation",
    ),
    "transfer": _h(
        "agents.ai.swml_actions -> kernel.inline transfer [swaig_allow_swml]",
        "tests/scenario/test_ai_swml_actions.py::test_transfer_action_with_summarize_hands_the_summary_to_the_destination",
    ),
    "hangup": _h("control.hangup -> AiSession.hangup", HANDLE_T),
    "stop": _h(
        "control.stop -> AiSession.stop: the ai verb returns, the script goes on",
        "tests/scenario/test_ai_actions_more.py::test_stop_ends_the_ai_and_the_script_goes_on_where_hangup_ends_the_call",
    ),
    "hold": _h(
        "agents.ai.controls: music, caller unheard, resumes at the timeout",
        "tests/scenario/test_ai_actions.py::test_hold_plays_hold_music_ignores_the_caller_and_resumes_at_its_timeout",
    ),
    "say": _h("control.say -> AiSession.say (spoken through the phrase cache)", HANDLE_T),
    "set_global_data": _h(
        "control.set_global_data [swaig_set_global_data]; the next webhook body carries it",
        "tests/unit/swaig/test_webhooks.py::test_runner_dispatch_precedence_meta_scope_and_actions",
    ),
    "unset_global_data": _h(
        "control.unset_global_data [swaig_set_global_data]; key, keys, or an object replacing it all",
        "tests/scenario/test_ai_actions_more.py::test_unset_global_data_and_unset_meta_data_reach_the_next_webhook_body",
    ),
    "set_meta_data": _h(
        "runner meta_data scope (meta_data_token, else URL, else name); sent as meta_data",
        "tests/unit/swaig/test_webhooks.py::test_runner_dispatch_precedence_meta_scope_and_actions",
    ),
    "unset_meta_data": _h(
        "runner meta_data scope: key, keys, or {} to clear it; the next webhook body",
        "tests/scenario/test_ai_actions_more.py::test_unset_global_data_and_unset_meta_data_reach_the_next_webhook_body",
    ),
    "toggle_functions": _h(
        "runner function set -> the tools of the next request",
        "tests/scenario/test_ai_actions_more.py::test_toggle_functions_changes_the_tools_offered_with_the_next_request",
    ),
    "change_step": _h(
        "ContextEngine (forced, name or next) + control.change_step -> the step block of the next request",
        "tests/scenario/test_ai_actions_more.py::test_change_step_moves_now_to_next_or_to_a_step_navigation_would_refuse",
    ),
    "change_context": _h(
        "ContextEngine + control.change_context",
        "tests/unit/swaig/test_contexts.py::test_contexts_demo_navigation_through_the_runner",
    ),
    "context_switch": _h(
        "agents.ai.context_switch -> LlmView reset: inject, full_reset, consolidate, user_prompt, POM",
        "tests/scenario/test_ai_actions_more.py::test_context_switch_rebuilds_what_the_model_sees",
    ),
    "user_input": _h("control.add_user_input -> AiSession.add_user_input", HANDLE_T),
    "settings": _h(
        "agents.ai.steering: LLM knobs on the next request; confidence [swaig_allow_settings]",
        "tests/scenario/test_ai_actions.py::test_settings_reach_the_next_llm_request",
    ),
    "end_of_speech_timeout": _h(
        "control.update_settings -> turn manager, from the next turn [swaig_allow_settings]",
        "tests/scenario/test_ai_actions_more.py::test_end_of_speech_timeout_action_sets_the_silence_that_ends_the_next_turns",
    ),
    "speech_event_timeout": _h(
        "control.update_settings -> turn manager, from the next turn [swaig_allow_settings]",
        "tests/scenario/test_ai_actions_more.py::test_speech_event_timeout_action_ends_a_turn_whose_transcript_stopped_changing",
    ),
    "wait_for_user": _h(
        "agents.ai.controls",
        "tests/scenario/test_ai_actions.py::test_wait_for_user_seconds_then_the_agent_prompts_the_caller",
    ),
    "playback_bg": _h(
        "agents.ai.controls -> audio.mix under the agent at the played cursor",
        "tests/scenario/test_ai_actions.py::test_playback_bg_is_mixed_under_the_agent_and_stop_playback_bg_stops_it",
    ),
    "stop_playback_bg": _h(
        "agents.ai.controls",
        "tests/scenario/test_ai_actions.py::test_playback_bg_is_mixed_under_the_agent_and_stop_playback_bg_stops_it",
    ),
    "functions_on_speaker_timeout": _h(
        "agents.ai.steering",
        "tests/scenario/test_ai_actions.py::test_functions_on_speaker_timeout_offers_tools_to_the_attention_prompt",
    ),
    "extensive_data": _h(
        "agents.ai.steering", "tests/scenario/test_ai_actions.py::test_extensive_data_goes_whole_once_then_shortened"
    ),
    "back_to_back_functions": _h(
        "agents.ai.steering (tools withheld after a tool result unless allowed)",
        "tests/scenario/test_ai_actions.py::test_back_to_back_functions_lets_the_next_request_call_a_function",
    ),
    "replace_in_history": _h(
        "swaig.history_ops -> agents.ai.history_ops LlmView",
        "tests/scenario/test_ai_prompts_steps.py::test_replace_in_history_from_the_info_gatherer_prefab",
    ),
    "add_dynamic_hints": _h(
        "agents.ai.controls -> recognizer hotwords, transcript rules",
        "tests/scenario/test_ai_actions.py::test_dynamic_hints_reach_the_recognizer_and_rewrite_transcripts",
    ),
    "clear_dynamic_hints": _h(
        "agents.ai.controls",
        "tests/scenario/test_ai_actions.py::test_dynamic_hints_reach_the_recognizer_and_rewrite_transcripts",
    ),
    "change_voice": _h(
        "agents.ai.controls -> Piper voices beside [tts] model",
        "tests/scenario/test_ai_actions.py::test_change_voice_speaks_the_next_utterance_in_the_new_voice",
    ),
    "user_event": _h(
        "agents.ai.controls -> user_event on the event bus",
        "tests/scenario/test_ai_actions.py::test_user_event_reaches_the_event_bus",
    ),
    "<unknown>": _h(
        "logged and skipped, the others still apply (e.g. data_map_demo's start_playback)",
        ACTIONS_T + "test_unknown_and_malformed_actions_are_skipped_not_fatal",
    ),
}
