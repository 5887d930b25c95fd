// The call page: WebRTC to the media server, JSON offer/answer, events over a data channel.
// Plain browser JavaScript, no build step. window.msCall exposes state for automated tests.
"use strict";

const $ = (id) => document.getElementById(id);
const ui = {
  route: $("route"), call: $("call"), hangup: $("hangup"), status: $("status"), callId: $("call-id"),
  duration: $("duration"), mic: $("mic"), keypad: $("keypad"), digits: $("digits"),
  transcript: $("transcript"), latency: $("latency").tBodies[0], events: $("events"), remote: $("remote"),
};
const state = { phase: "idle", callId: null, events: [], pc: null, channel: null, mic: null, started: 0,
                timer: null, audio: null, recorded: [], recordedSamples: 0, config: null, error: null };
window.msCall = state;
const MAX_RECORD_SECONDS = 120;

function setPhase(phase, text) {
  state.phase = phase;
  ui.status.textContent = text || phase;
  ui.status.className = "pill " + ({ connecting: "connecting", ending: "connecting", live: "live", failed: "failed" }[phase] || "idle");
  const busy = phase === "connecting" || phase === "live" || phase === "ending";
  ui.call.disabled = busy;
  ui.hangup.disabled = !busy || phase === "ending";
  ui.route.disabled = busy;
  for (const key of ui.keypad.querySelectorAll("button")) key.disabled = phase !== "live";
}

async function loadRoutes() {
  const response = await fetch("/webrtc/routes");
  state.config = await response.json();
  const wanted = new URLSearchParams(location.search).get("route");
  for (const name of state.config.routes) {
    const option = new Option(name, name, false, name === wanted);
    ui.route.add(option);
  }
}

function buildKeypad() {
  for (const digit of "123456789*0#") {
    const key = document.createElement("button");
    key.textContent = digit;
    key.dataset.digit = digit;
    key.disabled = true;
    key.addEventListener("click", () => sendDigit(digit));
    ui.keypad.append(key);
  }
}

function sendDigit(digit) {
  if (!state.channel || state.channel.readyState !== "open") return false;
  state.channel.send(JSON.stringify({ type: "dtmf", digit }));
  ui.digits.textContent += digit;
  return true;
}
state.sendDigit = sendDigit;

// -- recording the remote audio (WebAudio), so that tests and users can keep what they heard --
function startRecording(stream) {
  const ctx = state.audio;
  const source = ctx.createMediaStreamSource(stream);
  const tap = ctx.createScriptProcessor(4096, 1, 1);
  const mute = ctx.createGain();
  mute.gain.value = 0;
  tap.onaudioprocess = (e) => {
    if (state.recordedSamples > MAX_RECORD_SECONDS * ctx.sampleRate) return;
    const chunk = new Float32Array(e.inputBuffer.getChannelData(0));
    state.recorded.push(chunk);
    state.recordedSamples += chunk.length;
  };
  source.connect(tap); tap.connect(mute); mute.connect(ctx.destination);
  state.recorder = { source, tap };
}

state.recordingWav = function () {  // base64 of a mono 16-bit WAV at the context's rate
  const rate = state.audio ? state.audio.sampleRate : 48000;
  const n = state.recordedSamples;
  const buffer = new ArrayBuffer(44 + 2 * n);
  const view = new DataView(buffer);
  const text = (offset, s) => { for (let i = 0; i < s.length; i++) view.setUint8(offset + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + 2 * n, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, 2 * n, true);
  let offset = 44;
  for (const chunk of state.recorded) {
    for (const x of chunk) { view.setInt16(offset, Math.max(-1, Math.min(1, x)) * 32767, true); offset += 2; }
  }
  let binary = "";
  const bytes = new Uint8Array(buffer);
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};

// -- the call ---------------------------------------------------------------------------------
function waitForGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, timeoutMs);  // send what we have: host candidates come first
  });
}

async function placeCall() {
  resetView();
  setPhase("connecting", "connecting");
  try {
    state.audio = state.audio || new AudioContext();
    await state.audio.resume();
    state.mic = await navigator.mediaDevices.getUserMedia({ audio: true });
    ui.mic.textContent = state.mic.getAudioTracks()[0].label || "on";
    const pc = state.pc = new RTCPeerConnection({
      iceServers: state.config.ice_servers, iceTransportPolicy: state.config.ice_transport_policy });
    for (const track of state.mic.getAudioTracks()) pc.addTrack(track, state.mic);
    const channel = state.channel = pc.createDataChannel("events");
    channel.onmessage = (e) => onMessage(JSON.parse(e.data));
    channel.onopen = () => setPhase("live", "in call");
    channel.onclose = () => { if (state.channel === channel) endCall("ended", "ended"); };
    pc.ontrack = (e) => {
      const stream = e.streams[0] || new MediaStream([e.track]);
      ui.remote.srcObject = stream;  // Chrome renders remote WebRTC audio to WebAudio only when played
      startRecording(stream);
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") endCall("failed", "connection failed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitForGathering(pc, 3000);
    const response = await fetch(`/webrtc/${encodeURIComponent(ui.route.value)}/offer`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer" }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    state.callId = answer.call_id;
    ui.callId.textContent = answer.call_id;
    await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
    state.started = performance.now();
    state.timer = setInterval(() => {
      ui.duration.textContent = ((performance.now() - state.started) / 1000).toFixed(1) + " s";
    }, 200);
  } catch (err) {
    state.error = String(err.message || err);
    endCall("failed", state.error);
  }
}

// Our hangup waits for the server's last word (its last events, `call_ended` among them, then
// {"type": "hangup"}) before closing our side; a server that does not answer soon is left.
const HANGUP_WAIT_MS = 2000;
function hangUp() {
  if (state.channel && state.channel.readyState === "open") {
    state.channel.send(JSON.stringify({ type: "hangup" }));
    setPhase("ending", "hanging up");
    const pc = state.pc;
    setTimeout(() => { if (state.pc === pc && state.phase === "ending") endCall("ended", "ended"); }, HANGUP_WAIT_MS);
    return;
  }
  if (state.callId) fetch(`/webrtc/calls/${state.callId}`, { method: "DELETE" });
  endCall("ended", "ended");
}

function endCall(phase, text) {
  clearInterval(state.timer);
  if (state.recorder) { state.recorder.tap.onaudioprocess = null; state.recorder = null; }
  if (state.pc) { state.pc.close(); state.pc = null; }
  if (state.mic) { for (const t of state.mic.getTracks()) t.stop(); state.mic = null; }
  state.channel = null;
  setPhase(phase, text);
}

function resetView() {
  state.callId = null; state.events = []; state.recorded = []; state.recordedSamples = 0; state.error = null;
  state.turns = 0; state.speechEnd = null; state.endpoint = null; state.callerOpen = null; state.agentLines = new Map();
  ui.callId.textContent = "–"; ui.duration.textContent = "–"; ui.mic.textContent = "–"; ui.digits.textContent = "";
  ui.events.replaceChildren();
  ui.transcript.replaceChildren(hint("li", "Speech of both sides appears here."));
  ui.latency.replaceChildren(hint("tr", "One row per AI turn."));
}

function hint(tag, text) {  // a placeholder row, removed by the first real entry
  const el = document.createElement(tag);
  el.className = "hint";
  if (tag === "tr") { const cell = el.insertCell(); cell.colSpan = 4; cell.textContent = text; } else el.textContent = text;
  return el;
}

// -- events from the server -------------------------------------------------------------------
function onMessage(message) {
  if (message.type === "hangup") { endCall("ended", state.phase === "ending" ? "ended" : "ended by server"); return; }
  if (message.type === "error") { addEvent({ event: "error", error: message.error }); return; }
  if (message.type === "transcript") { agentLine(message); return; }
  if (message.type === "event") {
    state.events.push(message);
    addEvent(message);
    addTranscript(message);
    addLatency(message);
  }
}

const HIDDEN = new Set(["type", "event", "ts"]);
function addEvent(entry) {
  const li = document.createElement("li");
  const t = document.createElement("span"); t.className = "t";
  t.textContent = entry.ts ? new Date(entry.ts * 1000).toISOString().slice(11, 23) : "";
  const n = document.createElement("span"); n.className = "n"; n.textContent = entry.event;
  const fields = Object.entries(entry).filter(([k]) => !HIDDEN.has(k))
    .map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`).join(" ");
  li.append(t, n, document.createTextNode(fields));
  ui.events.append(li);
  ui.events.scrollTop = ui.events.scrollHeight;
}

function speaker(entry) {
  const who = String(entry.role || entry.side || entry.speaker || entry.event).toLowerCase();
  return /user|caller|asr|heard|speech/.test(who) ? "caller" : "agent";
}

function addTranscript(entry) {
  let text = null, who = null, partial = false;
  if (entry.event === "play_item" && entry.item === "PlaySay" && typeof entry.detail === "string") {
    text = entry.detail; who = "agent";  // what the server speaks (SWML play say:)
  } else if (/transcript|turn|asr|utterance/.test(entry.event) && typeof entry.text === "string" && entry.text) {
    text = entry.text; who = speaker(entry); partial = entry.final === false || /partial/.test(entry.event);
  } else if (entry.event === "dtmf_received") {
    text = `pressed ${entry.digit}`; who = "caller";
  }
  // A new utterance closes the caller's line: the final of the last one may come after its endpoint
  // (turn detection ends a turn before the recognizer has finished it), and still replaces it.
  if (entry.event === "turn_speech_started") state.callerOpen = null;
  if (text === null) return;
  for (const el of ui.transcript.querySelectorAll(".hint")) el.remove();
  if (entry.event === "turn_asr_final") {  // a later final pass of the same utterance replaces it
    if (state.callerOpen) state.callerOpen.remove();
    state.callerOpen = transcriptLine("caller", text, false);
    return;
  }
  const last = ui.transcript.lastElementChild;
  if (last && last.classList.contains("partial") && last.classList.contains(who)) last.remove();
  transcriptLine(who, text, partial);
}

function transcriptLine(who, text, partial) {
  for (const el of ui.transcript.querySelectorAll(".hint")) el.remove();
  const li = document.createElement("li");
  li.className = who + (partial ? " partial" : "");
  const tag = document.createElement("span"); tag.className = "who"; tag.textContent = who;
  const body = document.createElement("span"); body.className = "text"; body.textContent = text;
  li.append(tag, body);
  ui.transcript.append(li);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
  return li;
}

// The agent's reply, word by word as the caller hears it (the server follows its played cursor):
// `speaking` while more words are due, then its final text; `cut` when a barge-in interrupted it,
// with the words that were heard. An empty text (nothing was heard) removes the line.
function agentLine(message) {
  state.agentLines = state.agentLines || new Map();
  let line = state.agentLines.get(message.key);
  if (!message.text) {
    if (line) { line.remove(); state.agentLines.delete(message.key); }
    return;
  }
  if (line) line.querySelector(".text").textContent = message.text;
  else state.agentLines.set(message.key, line = transcriptLine("agent", message.text, false));
  line.classList.toggle("speaking", Boolean(message.speaking));
  line.classList.toggle("cut", Boolean(message.cut));
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

// Per-turn latency. The AI engine logs turn events with `caller_sample`, a position on the
// caller's 16 kHz media clock: differences of those are exact. LLM and TTS events carry only
// their log time, so they are shown relative to the endpoint decision (negative = preemptive).
const CALLER_RATE_PER_MS = 16;
function addLatency(entry) {
  const e = entry.event;
  if (e === "turn_speech_ended") { state.speechEnd = entry; return; }
  if (e === "turn_endpoint" && state.speechEnd) {
    state.turns = (state.turns || 0) + 1;
    state.endpoint = entry;
    state.endpointAt = (entry.caller_sample - state.speechEnd.caller_sample) / CALLER_RATE_PER_MS;
    latencyRow("end of speech → endpoint", state.endpointAt, false, state.endpointAt);
  } else if ((e === "turn_llm_first_token" || e === "turn_tts_first_audio") && state.endpoint) {
    const what = e === "turn_llm_first_token" ? "endpoint → LLM first token" : "endpoint → TTS first audio";
    const ms = (entry.ts - state.endpoint.ts) * 1000;
    latencyRow(what, ms, false, state.endpointAt + ms);
  } else if (e === "turn_first_agent_frame" && state.speechEnd && state.turns) {
    const ms = (entry.caller_sample - state.speechEnd.caller_sample) / CALLER_RATE_PER_MS;
    latencyRow("end of speech → agent audio", ms, true, ms);
  } else if (/turn|latency/.test(e)) {  // any other turn summary with *_ms fields
    for (const [name, value] of Object.entries(entry)) {
      if (name.endsWith("_ms") && typeof value === "number") latencyRow(name.replace(/_ms$/, "").replaceAll("_", " "), value);
    }
  }
}

// Waterfall: each milestone of a turn is a bar from the caller's end of speech (0) to when it
// happened, on one scale for the whole call, so the stages of a turn read top to bottom like a
// network waterfall (a preemptive LLM/TTS bar ends left of the endpoint's).
const WATERFALL_MS = 2000;  // full width; longer stages are clipped and marked
function waterfallCell(row, at) {
  const cell = row.insertCell();
  cell.className = "waterfall";
  if (!Number.isFinite(at)) return;
  const bar = document.createElement("div");
  bar.className = "bar" + (at > WATERFALL_MS ? " clipped" : "");
  bar.style.width = `${Math.max(0.5, Math.min(100, (100 * Math.max(0, at)) / WATERFALL_MS))}%`;
  bar.title = `${Math.round(at)} ms after end of speech`;
  cell.append(bar);
}

function latencyRow(measure, ms, headline = false, at = NaN) {
  if (!Number.isFinite(ms)) return;
  for (const el of ui.latency.querySelectorAll(".hint")) el.remove();
  const row = ui.latency.insertRow();
  if (headline) row.className = "headline";
  row.insertCell().textContent = state.turns || "–";
  row.insertCell().textContent = measure;
  const cell = row.insertCell(); cell.className = "num"; cell.textContent = Math.round(ms);
  waterfallCell(row, at);
}

ui.call.addEventListener("click", placeCall);
ui.hangup.addEventListener("click", hangUp);
buildKeypad();
setPhase("idle");
loadRoutes().catch((err) => { state.error = String(err); setPhase("failed", "cannot load routes"); });
