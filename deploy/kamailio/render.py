"""Render kamailio.cfg and its dispatcher list from the template (used by compose and tests).

    python render.py --listen udp:0.0.0.0:5060 --alias pbx.local --out /tmp/kamailio \
        --media sip:mediaserver:5080 [--media sip:mediaserver2:5080] [--ping-interval 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

TEMPLATE = Path(__file__).with_name("kamailio.cfg.tmpl")


def render(
    out: Path, listen: str, alias: str, media: list[str], ping_interval: int = 2, list_path: str | None = None
) -> Path:
    """Write kamailio.cfg and dispatcher.list into out; list_path is where kamailio will see the
    list (inside a container it differs from where it is written)."""
    out.mkdir(parents=True, exist_ok=True)
    dispatcher = out / "dispatcher.list"
    dispatcher.write_text("".join(f"1 {uri} 0 0\n" for uri in media))
    text = TEMPLATE.read_text()
    for key, value in {
        "LISTEN": listen,
        "ALIAS": alias,
        "DISPATCHER_LIST": list_path or str(dispatcher),
        "PING_INTERVAL": str(ping_interval),
    }.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        raise ValueError(f"unfilled placeholder in {TEMPLATE}")
    cfg = out / "kamailio.cfg"
    cfg.write_text(text)
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="udp:0.0.0.0:5060")
    parser.add_argument("--alias", default="pbx.local")
    parser.add_argument("--media", action="append", required=True, help="a media server SIP URI (repeat)")
    parser.add_argument("--ping-interval", type=int, default=2)
    parser.add_argument("--out", default="/tmp/kamailio")
    parser.add_argument("--list-path", help="the dispatcher list's path as kamailio sees it")
    args = parser.parse_args()
    print(render(Path(args.out), args.listen, args.alias, args.media, args.ping_interval, args.list_path))


if __name__ == "__main__":
    main()
