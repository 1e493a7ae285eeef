"""Jurisdiction profiles: each seed regulation as configuration the platform runs with.

Owns: the numbers and switches that differ between the five jurisdictions (reply deadlines, escalation,
reporting dates, open data, ...), each traced to its seed file and article, and loading a custom profile
from JSON validated by the same model. Rules common to all seeds live in the code, not here.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

Level = Literal["district", "county_city", "prefecture_city", "province", "municipality"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EscalationStep(_Frozen):
    """One level a refused or not-shared request can be taken to, in order."""

    name: str  # code name: negotiation, coordinator, leading_group
    label: str  # Chinese, for the UI
    deadline_wd: PositiveInt | None = None  # None: the seed sets no time limit
    written_application: bool = False


class MonthDay(_Frozen):
    """A yearly due date ("每年12月底前" is month=12, day=31)."""

    month: int = Field(ge=1, le=12)
    day: int = Field(ge=1, le=31)

    @model_validator(mode="after")
    def _real_day(self) -> Self:
        date(2024, self.month, self.day)  # a leap year, so 02-29 is accepted
        return self


class Profile(_Frozen):
    name: str
    display_name: str
    level: Level
    source: str

    # Share requests (R3.2): a fixed reply deadline, or (Hainan) the provider's stated terms.
    reply_deadline_wd: PositiveInt | None
    provider_sets_deadline: bool = False
    # Used when the provider states no terms; 10 wd is the national rule (国发〔2016〕51号).
    default_reply_deadline_wd: PositiveInt = 10
    escalation: tuple[EscalationStep, ...]

    catalog_update_wd: PositiveInt = 15
    conditional_needs_policy_basis: bool = False
    third_party_transfer_allowed_with_approval: bool = False
    cite_source_required: bool = False  # includes the provider's consent before use in a major decision

    open_data: bool = False
    open_data_demand_reply_wd: PositiveInt | None = None
    # Hainan 003 Art.26: what holds no commercial secret or personal privacy and no law keeps closed is opened;
    # a resource kept from the public says which of those reasons applies.
    open_by_default: bool = False

    # No seed sets a number for disputes (all say "及时"); 5 wd is the platform's default.
    dispute_reply_wd: PositiveInt = 5
    dispute_copies_authority: bool = False
    dispute_handled_by_platform: bool = False  # Xiangyang: doubts go to the big-data centre

    has_own_platform: bool = True
    upper_platform: str | None = None  # where cross-level exchange goes
    serves_adjacent_levels: bool = False
    first_access_filing_required: bool = False
    complaints: bool = False
    # No seed sets a number for "限期整改" (000 Art.25, 002 Art.23, 003 Art.39, 004 Art.33) or for answering a
    # written complaint (003 Art.41): 10 and 15 working days are the platform's defaults, set per jurisdiction.
    rectification_wd: PositiveInt = 10
    complaint_reply_wd: PositiveInt = 15
    log_retention_years: PositiveInt = 5

    yearly_report_due: MonthDay | None = None
    monthly_progress: bool = False

    accountable_role: Literal["head_of_department", "chief_data_officer"] = "head_of_department"
    resource_administrator_on_file: bool = False
    update_cycle_sanctions: bool = False
    legacy_systems_connect_by: date | None = None

    @model_validator(mode="after")
    def _one_reply_rule(self) -> Self:
        if self.provider_sets_deadline == (self.reply_deadline_wd is not None):
            raise ValueError("set either reply_deadline_wd or provider_sets_deadline, not both or neither")
        if self.open_data_demand_reply_wd is not None and not self.open_data:
            raise ValueError("open_data_demand_reply_wd needs open_data")
        if self.open_by_default and not self.open_data:
            raise ValueError("open_by_default needs open_data")
        return self

    def reply_deadline(self, provider_terms_wd: int | None = None) -> int:
        """Working days a provider has to answer a share request under this profile."""
        if self.reply_deadline_wd is not None:
            return self.reply_deadline_wd
        return provider_terms_wd or self.default_reply_deadline_wd


_NEGOTIATION = EscalationStep(name="negotiation", label="使用部门与提供部门协商")

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="zhonglou",
            display_name="常州市钟楼区",
            level="district",
            source=(
                "seeds/000_30c568635c1a20e3.txt 常州市钟楼区政务信息资源共享管理暂行办法 (2023): "
                "Art.9 catalog 15 wd; Art.10 link to city platform; Art.11 legacy systems by 2023-09; "
                "Art.18 reply 5 wd, then negotiation; Art.20 disputes; Art.24 CDO accountable"
            ),
            reply_deadline_wd=5,
            escalation=(_NEGOTIATION,),
            upper_platform="常州市共享交换平台",
            accountable_role="chief_data_officer",
            legacy_systems_connect_by=date(2023, 9, 30),
        ),
        Profile(
            name="feicheng",
            display_name="肥城市",
            level="county_city",
            source=(
                "seeds/001_d821a377b60af2e5.txt 肥城市政务信息资源共享管理暂行办法 (2018): "
                "Art.6, 8 Tai'an platform, no own platform; Art.10 catalog 15 wd; Art.17 reply 10 wd, "
                "negotiation, then city office; Art.19 logs 5 years; Art.21 update-cycle sanctions; "
                "Art.27 disputes; Art.31 resource administrator on file"
            ),
            reply_deadline_wd=10,
            escalation=(
                _NEGOTIATION,
                EscalationStep(name="coordinator", label="市政府办公室协调"),
            ),
            has_own_platform=False,
            upper_platform="泰安市级共享平台",
            resource_administrator_on_file=True,
            update_cycle_sanctions=True,
        ),
        Profile(
            name="xiangyang",
            display_name="襄阳市",
            level="prefecture_city",
            source=(
                "seeds/002_bcfe3320aa1c6b56.txt 襄阳市政务信息资源共享管理暂行办法 and "
                "整合共享工作方案 (2017): Art.6 catalog 15 wd; Art.9 serves own, upper and lower levels; "
                "Art.10 reply 10 wd, written application to 市信息化办 answered in 10 wd; "
                "Art.14 disputes to the big-data centre; Art.17 yearly report by end of December; "
                "plan II.(八) provincial platform; plan III.(五) monthly progress"
            ),
            reply_deadline_wd=10,
            escalation=(
                EscalationStep(
                    name="coordinator",
                    label="市信息化办组织协调",
                    deadline_wd=10,
                    written_application=True,
                ),
            ),
            dispute_handled_by_platform=True,
            upper_platform="湖北省数据共享交换平台",
            serves_adjacent_levels=True,
            yearly_report_due=MonthDay(month=12, day=31),
            monthly_progress=True,
        ),
        Profile(
            name="hainan",
            display_name="海南省",
            level="province",
            source=(
                "seeds/003_6b5e9a7d5d91cc2f.txt 海南省公共信息资源管理办法 (琼府〔2018〕39号): "
                "Art.8 catalog 15 wd; Art.9 conditional needs a basis; Art.12 negative list; "
                "Art.16 national platform; Art.20 provider's terms, negotiation, then 信息化主管部门; "
                "Art.23 third-party transfer with approval; Art.24 disputes; Art.25-31 open data; "
                "Art.36 first-access filing; Art.41 written complaints"
            ),
            reply_deadline_wd=None,
            provider_sets_deadline=True,
            escalation=(
                _NEGOTIATION,
                EscalationStep(name="coordinator", label="信息化主管部门协调"),
            ),
            conditional_needs_policy_basis=True,
            third_party_transfer_allowed_with_approval=True,
            open_data=True,
            open_by_default=True,
            upper_platform="国家数据共享平台",
            first_access_filing_required=True,
            complaints=True,
        ),
        Profile(
            name="beijing",
            display_name="北京市",
            level="municipality",
            source=(
                "seeds/004_726de26cfaac6d29.txt 北京市政务信息资源管理办法(试行) (京政发〔2017〕37号): "
                "Art.9 catalog 15 wd; Art.17 negotiation answered in 10 wd, then 领导小组办公室, then "
                "领导小组; Art.19 disputes copied to 市经济信息化委, cite source; Art.20 open-data demands "
                "15 wd; Art.29 yearly report by end of November"
            ),
            reply_deadline_wd=10,
            escalation=(
                EscalationStep(name="coordinator", label="领导小组办公室协调"),
                EscalationStep(name="leading_group", label="报领导小组审议"),
            ),
            cite_source_required=True,
            open_data=True,
            open_data_demand_reply_wd=15,
            dispute_copies_authority=True,
            yearly_report_due=MonthDay(month=11, day=30),
        ),
    )
}


def load_profile(name: str, custom_path: str | None = None) -> Profile:
    """A built-in profile by name, or with name "custom" the profile in the JSON file at custom_path."""
    if name == "custom":
        if custom_path is None:
            raise ValueError("profile 'custom' needs a path to a JSON file")
        return Profile.model_validate_json(Path(custom_path).read_text(encoding="utf-8"))
    try:
        return PROFILES[name]
    except KeyError:
        valid = ", ".join([*PROFILES, "custom"])
        raise ValueError(f"unknown profile {name!r}; valid names: {valid}") from None
