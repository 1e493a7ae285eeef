"""connector.toml is checked at start: each problem names its key and says what to write there."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.cli import main
from connector.config import ConfigError, load

GOOD = """
[connector]
name = "gaj-1"

[platform]
gateway_url = "https://platform.example.gov.cn"
client_id = "abc"
client_secret = "s3cret"

[[sources]]
name = "hukou"
resource = "301002/000001"
kind = "postgres_wal"
database_url = "postgresql://connector@10.0.0.5/hukou"
table = "public.person"
key = ["sfzh"]
[sources.mapping]
sfzh = "GMSFHM"
xm = "XM"
"""


def test_a_complete_file_loads_with_defaults(tmp_path: Path) -> None:
    path = tmp_path / "connector.toml"
    path.write_text(GOOD, encoding="utf-8")
    cfg = load(path)
    assert cfg.sources[0].slot_name == "govshare_hukou" and cfg.push.batch_max_rows == 5000
    assert cfg.connector.home == str(tmp_path)  # relative to the file, so the state stays beside it


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda t: t.replace('client_id = "abc"\n', ""), "platform.client_id is missing; write: client_id ="),
        (lambda t: t.replace('kind = "postgres_wal"', 'kind = "oracle"'), "sources[0].kind"),
        (lambda t: t.replace('key = ["sfzh"]', 'key = ["id"]'), "sources[0] key column 'id' must be in mapping"),
        (lambda t: t.replace('xm = "XM"', 'xm = "XM"\nbatch = 5'), "sources[0].mapping.batch"),
        (lambda t: t.replace("[connector]", "[connector]\nlisten_port = 1"), "connector.listen_port is not a setting"),
        (
            lambda t: t.replace('table = "public.person"\n', ""),
            'sources[0].table is missing; write: table = "public.person"',
        ),
    ],
)
def test_each_problem_names_its_key_and_what_to_write(tmp_path: Path, change, expected: str) -> None:
    path = tmp_path / "connector.toml"
    path.write_text(change(GOOD), encoding="utf-8")
    with pytest.raises(ConfigError) as refused:
        load(path)
    assert any(expected in p for p in refused.value.problems), refused.value.problems


def test_the_program_refuses_a_broken_file_with_its_problems_and_exit_code_2(tmp_path: Path, capsys) -> None:
    path = tmp_path / "connector.toml"
    path.write_text("[connector\nname = 1", encoding="utf-8")
    assert main(["check", "--config", str(path)]) == 2
    assert "is not valid TOML" in capsys.readouterr().err
    path.write_text(GOOD, encoding="utf-8")
    assert main(["check", "--config", str(path)]) == 0
