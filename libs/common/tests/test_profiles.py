import json

import pytest
from pydantic import ValidationError

from govshare_common.profiles import PROFILES, Profile, load_profile


def test_the_five_seed_profiles_are_present():
    assert set(PROFILES) == {"zhonglou", "feicheng", "xiangyang", "hainan", "beijing"}
    for profile in PROFILES.values():
        assert profile.source.startswith("seeds/0")
        assert profile.catalog_update_wd == 15
        assert profile.log_retention_years == 5


def test_zhonglou():
    p = load_profile("zhonglou")
    assert (p.level, p.reply_deadline_wd, p.reply_deadline()) == ("district", 5, 5)
    assert [s.name for s in p.escalation] == ["negotiation"]
    assert p.accountable_role == "chief_data_officer"


def test_feicheng_is_a_child_of_the_upper_platform():
    p = load_profile("feicheng")
    assert p.reply_deadline_wd == 10
    assert not p.has_own_platform and p.upper_platform
    assert p.resource_administrator_on_file and p.update_cycle_sanctions


def test_xiangyang():
    p = load_profile("xiangyang")
    assert p.reply_deadline_wd == 10
    [coordinator] = p.escalation
    assert (coordinator.name, coordinator.deadline_wd, coordinator.written_application) == (
        "coordinator",
        10,
        True,
    )
    assert (p.yearly_report_due.month, p.yearly_report_due.day) == (12, 31)
    assert p.monthly_progress and p.serves_adjacent_levels


def test_hainan():
    p = load_profile("hainan")
    assert p.reply_deadline_wd is None and p.provider_sets_deadline
    assert p.reply_deadline(7) == 7
    assert p.reply_deadline() == p.default_reply_deadline_wd == 10
    assert p.conditional_needs_policy_basis
    assert p.third_party_transfer_allowed_with_approval
    assert p.open_data and p.first_access_filing_required and p.complaints


def test_beijing():
    p = load_profile("beijing")
    assert p.reply_deadline_wd == 10
    assert [s.name for s in p.escalation] == ["coordinator", "leading_group"]
    assert p.open_data_demand_reply_wd == 15
    assert p.dispute_copies_authority and p.cite_source_required
    assert (p.yearly_report_due.month, p.yearly_report_due.day) == (11, 30)


def test_only_the_seed_naming_open_data_demands_has_a_deadline_for_them():
    assert {n for n, p in PROFILES.items() if p.open_data_demand_reply_wd} == {"beijing"}
    assert {n for n, p in PROFILES.items() if p.open_data} == {"hainan", "beijing"}


def test_profiles_are_frozen():
    with pytest.raises(ValidationError):
        PROFILES["zhonglou"].reply_deadline_wd = 3


def test_custom_profile_from_json(tmp_path):
    data = PROFILES["xiangyang"].model_dump(mode="json") | {
        "name": "custom-county",
        "display_name": "某县",
        "level": "district",
        "reply_deadline_wd": 7,
    }
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    p = load_profile("custom", str(path))
    assert (p.name, p.reply_deadline_wd, p.escalation[0].deadline_wd) == ("custom-county", 7, 10)
    assert p.yearly_report_due == PROFILES["xiangyang"].yearly_report_due


def test_custom_profile_is_validated(tmp_path):
    data = PROFILES["zhonglou"].model_dump(mode="json") | {"provider_sets_deadline": True}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ValidationError):
        load_profile("custom", str(path))
    path.write_text(json.dumps(PROFILES["zhonglou"].model_dump(mode="json") | {"typo_field": 1}))
    with pytest.raises(ValidationError):
        load_profile("custom", str(path))


def test_custom_needs_a_path():
    with pytest.raises(ValueError, match="path"):
        load_profile("custom")


def test_unknown_profile_lists_valid_names():
    with pytest.raises(ValueError, match="zhonglou, feicheng, xiangyang, hainan, beijing, custom"):
        load_profile("shanghai")


def test_month_day_must_exist():
    data = PROFILES["beijing"].model_dump(mode="json")
    data["yearly_report_due"] = {"month": 11, "day": 31}
    with pytest.raises(ValidationError):
        Profile.model_validate(data)
