"""``inferflow-onfs import``: CSV / Parquet -> the embedded store, read back by LocalStore; errors name
their file, line and column; nothing is written when there is a problem."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from inferflow_onfs.cli import main
from inferflow_onfs.importer import infer
from inferflow_onfs.store import LocalStore

from inferflow_core.api import DataType

CSV = """catalog_id,price,stock,in_stock,title,emb,rating
1,3.5,10,true,red shoe,0.1:0.2,4
2,4.25,0,false,blue shoe,0.3:0.4,
3,,7,true,,0.5:0.6,5
"""


def _store(tmp_path: Path) -> Path:
    (tmp_path / "a.csv").write_text(CSV)
    more = pa.table(
        {
            "catalog_id": pa.array(["4"]),
            "price": pa.array(["9.75"]),
            "stock": pa.array(["1"]),
            "in_stock": pa.array(["true"]),
            "title": pa.array(["hat"]),
            "emb": pa.array(["0.7:0.8"]),
            "rating": pa.array([None], pa.string()),
        }
    )
    pq.write_table(more, tmp_path / "b.parquet")
    return tmp_path


def test_import_csv_and_parquet_then_read_back(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    src = _store(tmp_path)
    out = tmp_path / "store"
    argv = ["import", str(src / "a.csv"), str(src / "b.parquet"), "--out", str(out), "--label", "catalog"]
    argv += ["--key", "catalog_id", "--map", "title=T:name", "--type", "rating=int8", "--type", "price=fp64"]
    assert main([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"] == 4
    assert summary["keys"] == ["catalog_id"]
    assert summary["features"] == {
        "catalog:price": "DataTypeFP64",
        "catalog:stock": "DataTypeInt64",
        "catalog:in_stock": "DataTypeBool",
        "T:name": "DataTypeString",
        "catalog:emb": "DataTypeFP32Vector",
        "catalog:rating": "DataTypeInt8",
    }
    table = LocalStore(str(out)).table("catalog", ["catalog_id"])
    rows = table.positions([("2",), ("3",), ("4",), ("nope",)])
    price, ok = table.feature_column("catalog:price")
    assert price[rows].tolist()[:3] == [4.25, 0.0, 9.75]
    assert ok[rows].tolist() == [True, False, True, False]
    emb, _ = table.feature_column("catalog:emb")
    np.testing.assert_allclose(emb[rows[0]], [0.3, 0.4], rtol=1e-6)
    names, ok = table.feature_column("T:name")
    assert names[rows[0]] == "blue shoe"
    assert not ok[rows[1]]
    _, ok = table.feature_column("catalog:rating", DataType.INT8)
    assert ok[table.positions([("1",)])].tolist() == [True]
    assert not ok[rows[0]]
    # a second import needs --overwrite
    assert main(argv) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert "wrote" in capsys.readouterr().out


def test_problems_name_file_line_and_column_and_nothing_is_written(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.csv"
    bad.write_text("id,price,emb\n1,3.5,0.1:0.2\n,abc,0.3\n1,2,0.5:0.6\n")
    out = tmp_path / "store"
    args = ["import", str(bad), "--out", str(out), "--label", "c", "--key", "id", "--type", "price=fp32"]
    assert main([*args, "--type", "emb=fp32_vector"]) == 1
    err = capsys.readouterr().err
    assert "nothing written" in err
    assert f"{bad}:line 3: column 'c:price': 'abc' is not a DataTypeFP32" in err
    assert f"{bad}:line 3: column 'id': key is empty" in err
    assert f"{bad}:line 3: column 'c:emb': '0.3' is not a DataTypeFP32Vector of 2 elements" in err
    assert not out.exists()
    bad.write_text("id,price\n1,3.5\n1,4\n")
    assert main(args) == 1
    assert "key '1' appears in rows 0 and 1" in capsys.readouterr().err
    assert main(["import", str(bad), "--out", str(out), "--label", "c", "--key", "sku"]) == 1
    assert "no key column 'sku'" in capsys.readouterr().err


def test_inference() -> None:
    assert infer(["true", "FALSE"]) is DataType.BOOL
    assert infer(["1", "-2"]) is DataType.INT64
    assert infer(["1", "2.5"]) is DataType.FP32
    assert infer(["1e300"]) is DataType.FP64
    assert infer(["1:2", "3:4"]) is DataType.FP32_VECTOR
    assert infer(["a", "1"]) is DataType.STRING


def test_console_script_help_has_every_flag() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "inferflow-onfs"), "import", "--help"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    for flag in (
        "--out",
        "--label",
        "--key",
        "--map",
        "--drop",
        "--type",
        "--group",
        "--overwrite",
        "--json",
    ):
        assert flag in out.stdout
