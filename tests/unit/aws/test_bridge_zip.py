"""The bridge function's artifact (engine/aws/bridge_function.bridge_zip): the same bytes on
every build, and export_reader.py alone in it works where `engine` cannot be imported."""

from __future__ import annotations

import io
import json
import sysconfig
import zipfile
from pathlib import Path

import boto3

from engine.aws.bridge_function import HANDLER, bridge_zip, code_sha256
from engine.aws.export_reader import reader_key_for
from tests.support.exports import item, put_export, read_json, run_python, s3_env

BUCKET = "exports"
READER = "rb/run/step/reader/"

# no site: the editable install of `engine` is a .pth in site-packages, which adding the
# directory to sys.path by hand does not read; boto3 is there, as in Lambda's runtime
CHILD = """
import importlib.util, json, sys
zip_path, site, event = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [zip_path]
sys.path.append(site)
assert importlib.util.find_spec("engine") is None, "engine is importable"
import export_reader
assert export_reader.__file__.startswith(zip_path), export_reader.__file__
module, function = sys.argv[4].split(".")
assert module == "export_reader"
print(json.dumps(getattr(export_reader, function)(event, None)))
"""


def test_the_zip_is_byte_identical_and_holds_the_reader_alone() -> None:
    one, two = bridge_zip(), bridge_zip()
    assert one == two and code_sha256(one) == code_sha256(two)
    with zipfile.ZipFile(io.BytesIO(one)) as zf:
        (info,) = zf.infolist()
        assert info.filename == "export_reader.py"
        assert info.date_time == (1980, 1, 1, 0, 0, 0)
        assert info.external_attr >> 16 == 0o100644
        source = Path(__file__).parents[3] / "engine" / "aws" / "export_reader.py"
        assert zf.read(info) == source.read_bytes()


def test_the_zipped_handler_runs_alone_against_s3(moto_endpoint: str, tmp_path: Path) -> None:
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    items = [item(n) for n in range(25)]
    _, keys = put_export(s3, BUCKET, "rb/run/step/export", [items])
    zip_path = tmp_path / "bridge.zip"
    zip_path.write_bytes(bridge_zip())
    event = {"Bucket": BUCKET, "Key": keys[0], "ReaderBucket": BUCKET, "ReaderPrefix": READER}
    site = sysconfig.get_paths()["purelib"]
    args = ["-I", "-S", "-c", CHILD, str(zip_path), site, json.dumps(event), HANDLER]
    out = run_python(args, s3_env(moto_endpoint), cwd=tmp_path)
    key = reader_key_for(keys[0], READER)
    assert json.loads(out) == {"Bucket": BUCKET, "Key": key, "items": 25}
    assert read_json(s3, BUCKET, key) == [{"Item": i} for i in items]
