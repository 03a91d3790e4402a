"""CLI conventions: ``inferflow predict`` against a real server, help on every argument, ``serve --help``
lists its environment variables, one-line errors (``--debug`` for the traceback), bench's exit code."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferflow_core import cli
from inferflow_core.testing.server import running_server
from tests.client_support import TREE, _runtime

ROOT = Path(__file__).resolve().parents[1]


async def _main(argv: list[str]) -> int:
    return await asyncio.to_thread(cli.main, argv)


@pytest.mark.integration
async def test_predict_table_json_and_request_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_server(_runtime(), TREE) as srv:
        s = ["--server", srv.address]
        assert (
            await _main(
                [
                    "predict",
                    "echo",
                    *s,
                    "-t",
                    "954",
                    "-t",
                    "614",
                    "-c",
                    "user_id=u1",
                    "-f",
                    "f_fp32:fp32=1.5,2.5",
                    "-f",
                    "f_int8_vector:int8_vector=1:2",
                ]
            )
            == 0
        )
        out = capsys.readouterr().out
        assert "targets (2)" in out
        assert "| catalog_id |" in out
        assert "1.5000" in out
        assert "[1,2]" in out

        assert await _main(["predict", "echo", *s, "-t", "a", "-f", "f_int64:int64=7", "--json"]) == 0
        got = json.loads(capsys.readouterr().out)
        assert got["targets"][0]["f_int64"] == 7
        assert got["targets"][0]["score"] == 0.5
        assert got["request_error"] == ""
        h = ["--http", "--server", f"127.0.0.1:{srv.http_port}"]
        assert await _main(["predict", "echo", *h, "-t", "a", "-f", "f_int64:int64=7", "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == got  # the same answer over the HTTP API

        assert await _main(["predict", "slate", *s, "-t", "1", "-t", "2", "--pairs", "0:1", "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["pairs"] == [{"slate_score": 2.0}]
        assert (
            await _main(["predict", "slate", *s, "-t", "1", "-t", "2", "--slates", "0,1", "--slates", "1"])
            == 0
        )
        out = capsys.readouterr().out
        assert "slates (2)" in out
        assert "1,2" in out

        reqs = tmp_path / "reqs.jsonl"
        reqs.write_text(
            json.dumps({"model_id": "echo", "targets": [1, 2], "features": {"f_fp64": [0.5, 1.5]},
                        "types": {"f_fp64": "fp64"}}) + "\n"
            + json.dumps({"model_id": "slate", "targets": ["x", "y", "z"], "slates": [[0, 1, 2]]}) + "\n"
        )  # fmt: skip
        assert await _main(["predict", *s, "--request", str(reqs), "--json"]) == 0
        first, second = map(json.loads, capsys.readouterr().out.splitlines())
        assert [r["f_fp64"] for r in first["targets"]] == [0.5, 1.5]
        assert second["slates"] == [{"slate_score": 3.0}]

        # a response with errors is printed, and exits 1
        assert await _main(["predict", "broken", *s, "-t", "1", "--json"]) == 1
        got = json.loads(capsys.readouterr().out)
        assert "broken" in got["request_error"]
        assert "broken" in got["target_errors"][0]

        # a call that fails: one line, exit 1; bad arguments: one line, exit 2
        assert await _main(["predict", "nope", *s, "-t", "1"]) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: InferPointWise: INVALID_ARGUMENT")
        assert len(err.splitlines()) == 1
    assert await _main(["predict", "echo", "-t", "1", "-f", "x:fp99=1"]) == 2
    assert "unknown data type 'fp99'" in capsys.readouterr().err
    assert await _main(["predict", "echo"]) == 2
    assert await _main(["predict", "echo", "-t", "1", "-t", "2", "-f", "p=1,2,3"]) == 2
    assert "3 values for 2 targets" in capsys.readouterr().err


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    plain = subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "predict", "--request", str(bad)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert plain.returncode == 2
    assert "Traceback" not in plain.stderr
    assert plain.stderr.startswith("error: ")
    assert len(plain.stderr.splitlines()) == 1
    debug = subprocess.run(
        [sys.executable, "-m", "inferflow_core.cli", "predict", "--request", str(bad), "--debug"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr


def _all_actions(
    parser: argparse.ArgumentParser, path: str = "inferflow"
) -> list[tuple[str, argparse.Action]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                if sub.add_help:  # plugin commands parse their own arguments
                    out += _all_actions(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            out.append((path, action))
    return out


def test_every_argument_and_flag_has_help() -> None:
    from inferflow_numerix.cli import _parser as numerix_parser
    from inferflow_onfs.cli import _parser as onfs_parser

    parsers = {"inferflow": cli.build_parser(), "onfs": onfs_parser(), "numerix": numerix_parser()}
    actions = [(path, a) for name, parser in parsers.items() for path, a in _all_actions(parser, name)]
    missing = [f"{path}: {a.dest}" for path, a in actions if not a.help]
    assert not missing, missing


def test_serve_help_lists_the_environment_variables_it_reads(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["serve", "--help"])
    out = capsys.readouterr().out
    for name in (
        "APP_PORT",
        "ETCD_SERVER",
        "INFERFLOW_REQUEST_VALUE_ENCODING",
        "INFERFLOW_DEFAULT_DEADLINE_MS",
    ):
        assert name in out


def test_plugins_json_parses(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plugins", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    # only real component types: the DAG's root (feature_initializer) is built by the core, not registered
    assert "feature_initializer" not in got["components"]
    assert isinstance(got["failures"], list)
    assert "directory" in got["config_sources"]
    assert "core" in {p["name"] for p in got["plugins"]}


def _bench_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("s1_run_for_test", ROOT / "benchmarks/s1/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_bench_exits_1_on_a_missed_target_unless_no_check(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = _bench_module()
    summary = {"embedded: overhead ratio": {"value": 2.0, "target": 1.5, "met": False}}
    fake = {"modes": {}, "summary": summary, "load_average_at_start": 0.0, "seconds": 1.0}
    monkeypatch.setattr(run, "run", lambda args: fake)
    monkeypatch.setattr(run, "print_table", lambda results: None)
    out = ["--out", str(tmp_path / "r.json")]
    assert run.main(out) == 1
    assert "targets missed: embedded: overhead ratio" in capsys.readouterr().err
    assert run.main([*out, "--no-check"]) == 0
    capsys.readouterr()
    assert run.main([*out, "--json", "--no-check"]) == 0
    assert json.loads(capsys.readouterr().out)["summary"] == summary
    fake["summary"] = {"x": {"value": 1.0, "target": 1.5, "met": True}}
    assert run.main(out) == 0


def test_bench_ranker_batch_is_embedded_only(capsys: pytest.CaptureFixture[str]) -> None:
    run = _bench_module()
    with pytest.raises(SystemExit):
        run.main(["--ranker-batch", "32"])  # the default modes include remote
    assert "--ranker-batch is measured in embedded mode only" in capsys.readouterr().err


def test_inferflow_bench_passes_its_options_to_the_runner(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from inferflow_core import bench

    run = _bench_module()
    seen: list[argparse.Namespace] = []
    fake = {"modes": {}, "summary": {}, "load_average_at_start": 0.0, "seconds": 1.0}
    monkeypatch.setattr(run, "run", lambda args: seen.append(args) or fake)
    monkeypatch.setattr(run, "print_table", lambda results: None)
    argv = ["bench", "--quick", "--modes", "embedded", "--ranker-batch", "32", "--paced", "100"]
    flags = bench.runner_flags(cli.build_parser().parse_args(argv))
    assert run.main([*flags, "--out", str(tmp_path / "r.json")]) == 0
    got = seen[0]
    assert (got.quick, got.modes, got.ranker_batch, got.paced) == (True, "embedded", 32, 100.0)
    assert bench.runner_flags(cli.build_parser().parse_args(["bench"])) == []
    capsys.readouterr()


def test_bench_paced_rate_is_reported_next_to_the_direct_baseline(capsys: pytest.CaptureFixture[str]) -> None:
    run = _bench_module()
    with pytest.raises(SystemExit):
        run.main(["--paced", "-5"])
    assert "--paced must be >= 0" in capsys.readouterr().err

    def measured(p50: float, paced_p50: float, cpu: float, **more: object) -> dict:
        check = {"sha1": "x", "final_score_filled": 200, "expected": 200}
        return {
            "latency": {"p50_ms": p50, "p99_ms": 2 * p50, "check": check},
            "throughput": {"rps": 1000.0},
            "paced": {
                "rate": 100.0,
                "requests": 300,
                "p50_ms": paced_p50,
                "p99_ms": 9.0,
                "cpu_ms_per_req": cpu,
            },
            "rss_mb": [200.0],
            **more,
        }

    direct = measured(1.0, 2.0, 1.5)
    off = measured(1.2, 3.0, 2.5, workers=1, cache="off")
    summary = run.summarise({"modes": {"embedded": {"direct": {"w1": direct}, "runs": [off]}}})
    assert summary["embedded: p50 ratio at 100 req/s paced (1 worker, cache off)"]["value"] == 1.5
    assert summary["embedded: server CPU ms per request at 100 req/s paced, inferflow"]["value"] == 2.5
    assert summary["embedded: server CPU ms per request at 100 req/s paced, direct"]["value"] == 1.5
    assert summary["embedded: p50 ratio at 100 req/s paced (1 worker, cache off)"]["met"] is None  # no target
    off.pop("paced")
    assert not any(
        "paced" in name
        for name in run.summarise({"modes": {"embedded": {"direct": {"w1": direct}, "runs": [off]}}})
    )


def test_second_scenario_runs_in_process(tmp_path: Path) -> None:
    """S2's model config loads without errors and every node of its DAG runs (a few requests)."""
    cmd = [sys.executable, str(ROOT / "benchmarks/second_scenario.py"), "--no-served", "--requests", "5"]
    got = subprocess.run([*cmd, "--json"], capture_output=True, text=True, timeout=180, check=False)
    assert got.returncode == 0, got.stderr[-2000:]
    result = json.loads(got.stdout)
    assert result["in_process"]["p50_us"] > 0
    assert set(result["in_process"]["nodes_us"]) >= {"user_f", "product_f", "pair_f", "ranker", "final"}
