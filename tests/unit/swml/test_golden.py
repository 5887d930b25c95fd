"""Golden tests against the official SDK (signalwire-sdk, the `test` extra).

1. Every SWML document under config/ (and our good fixtures) validates against the `schema.json`
   shipped inside the installed SDK, and loads in our model.
2. SWML rendered by the SDK's own example agents (`swaig-test --dump-swml`) and by its
   non-AI `SWMLService` examples (built in-process) loads and validates in our model.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from mediaserver.swml.document import load_document
from mediaserver.swml.interpreter import Interpreter

signalwire = pytest.importorskip("signalwire", reason="signalwire-sdk (test extra) is not installed")
jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="jsonschema-rs comes with signalwire-sdk")

ROOT = Path(__file__).resolve().parents[3]
SDK = Path(signalwire.__file__).parent
SCHEMA = SDK / "schema.json"
EXAMPLES = SDK / "_docs" / "examples"
OUR_DOCUMENTS = sorted(
    [*ROOT.glob("config/**/*.yaml"), *ROOT.glob("config/**/*.json"), *(ROOT / "tests/fixtures/swml").glob("*.yaml")]
)
# Examples that render one agent offline (docs/swml-contract.md §9); the others need keys or several agents.
AGENT_EXAMPLES = [
    "quickstart_agent",
    "declarative_agent",
    "faq_bot_agent",
    "session_and_state_demo",
    "call_flow_and_actions_demo",
    "swaig_features_agent",
    "simple_agent",
    "contexts_demo",
    "gather_info_demo",
    "gather_per_question_functions_demo",
    "step_function_inheritance_demo",
    "info_gatherer_example",
    "dynamic_info_gatherer_example",
    "receptionist_agent_example",
    "simple_static_agent",
    "simple_dynamic_agent",
    "simple_dynamic_enhanced",
    "comprehensive_dynamic_agent",
    "custom_path_agent",
    "data_map_demo",
    "kubernetes_ready_agent",
    "multi_endpoint_agent",
    "swml_service_routing_example",
    "swmlservice_swaig_standalone",
    "swmlservice_ai_sidecar",
    "bedrock_agent_run",
]


@pytest.fixture(scope="module")
def schema_validator() -> Any:
    return jsonschema_rs.Draft202012Validator(json.loads(SCHEMA.read_text()))


def test_schema_is_the_sdk_one_with_39_verbs() -> None:
    schema = json.loads(SCHEMA.read_text())
    methods = schema["$defs"]["SWMLMethod"]["anyOf"]
    from mediaserver.swml.document import VERBS

    names = {ref["$ref"].rsplit("/", 1)[1] for ref in methods}
    assert len(names) == len(VERBS) == 39


@pytest.mark.parametrize("path", OUR_DOCUMENTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_our_documents_validate_against_the_official_schema(path: Path, schema_validator: Any) -> None:
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    errors = [f"{'.'.join(map(str, e.instance_path))}: {e.message}" for e in schema_validator.iter_errors(data)]
    assert errors == []
    load_document(text, source=str(path))


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    tool = shutil.which("swaig-test", path=str(Path(sys.executable).parent)) or shutil.which("swaig-test")
    if tool is None:
        pytest.skip("swaig-test is not installed")

    def dump(name: str) -> tuple[str, str]:
        done = subprocess.run(
            [tool, str(EXAMPLES / f"{name}.py"), "--dump-swml", "--raw"],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        return name, done.stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(dump, AGENT_EXAMPLES))


@pytest.mark.parametrize("name", AGENT_EXAMPLES)
def test_sdk_rendered_swml_loads_in_our_model(name: str, rendered: dict[str, str]) -> None:
    text = rendered[name]
    assert text.lstrip().startswith("{"), f"swaig-test printed no SWML for {name}: {text[:200]!r}"
    document = load_document(text, source=name)
    assert document.sections["main"], name
    # and it runs in the interpreter up to its first effect without an error
    assert Interpreter(document).start() is not None


def _service_documents() -> list[tuple[str, dict[str, Any]]]:
    spec = importlib.util.spec_from_file_location("basic_swml_service", EXAMPLES / "basic_swml_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = []
    for cls, build in [
        ("VoicemailService", "build_voicemail_document"),
        ("IvrMenuService", "build_ivr_document"),
        ("CallTransferService", "build_transfer_document"),
        ("CallRecordingService", "build_recording_document"),
    ]:
        service = getattr(module, cls)()
        getattr(service, build)()
        out.append((cls, json.loads(service.render_document())))
    return out


def test_sdk_swml_services_load_validate_and_run(schema_validator: Any) -> None:
    documents = _service_documents()
    assert len(documents) == 4
    for name, data in documents:
        load_document(json.dumps(data), source=name)
        errors = [e.message for e in schema_validator.iter_errors(data)]
        assert errors == [], name
