"""Agents above the kernel: the `ai` verb's conversation (`ai/`) and the `ai_sidecar` observer
(`sidecar/`). They reach the kernel only through its protocols (`AiRunner`, `SidecarRunner`,
`Dialer`), a call's media taps and the per-call `AgentHandle`; the kernel never imports them."""
