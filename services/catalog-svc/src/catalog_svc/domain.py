"""The catalog's rules, pure: what a resource is, what makes it acceptable, and how its versions move.

Owns: the elements of the national catalog guide (发改高技〔2017〕1272号) with their Chinese labels, the
sharing rules of R1 (not_shared needs a legal basis, conditional needs conditions — and a policy basis under
profiles that say so —, base resources are unconditional, classified resources never enter, related codes
must exist, a department edits only its own), the review workflow's state machine, field-level diffs between
versions, resource codes, and when an update obligation is overdue. No I/O: callers load what a rule needs
(e.g. which related codes exist) and pass it in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

# --- the guide's vocabularies (code name -> Chinese label) -------------------------------------------------

RESOURCE_CLASSES: dict[str, str] = {
    "base": "基础信息资源",
    "thematic": "主题信息资源",
    "departmental": "部门信息资源",
}
CLASS_DIGIT: dict[str, str] = {"base": "1", "thematic": "2", "departmental": "3"}
BASE_CATEGORIES: dict[str, str] = {
    "01": "人口",
    "02": "法人单位",
    "03": "自然资源和空间地理",
    "04": "社会信用",
    "05": "电子证照",
    "06": "不动产",  # Hainan (003 Art.10)
    "07": "宏观经济",  # Beijing
}
THEMATIC_CATEGORIES: dict[str, str] = {
    "01": "公共服务",
    "02": "健康保障",
    "03": "社会保障",
    "04": "食品药品安全",
    "05": "安全生产",
    "06": "价格监管",
    "07": "能源安全",
    "08": "信用体系",
    "09": "城乡建设",
    "10": "社区治理",
    "11": "生态环保",
    "12": "应急维稳",
}
FORMAT_CATEGORIES: dict[str, str] = {
    "electronic_file": "电子文件",
    "spreadsheet": "电子表格",
    "database": "数据库",
    "image": "图形图像",
    "streaming_media": "流媒体",
    "self_describing": "自描述格式",
    "service_interface": "服务接口",
}
DATA_TYPES: dict[str, str] = {
    "C": "字符型",
    "N": "数值型",
    "Y": "货币型",
    "D": "日期型",
    "T": "日期时间型",
    "L": "逻辑型",
    "M": "备注型",
    "G": "通用型",
    "B": "二进制",
    "I": "整型",
    "F": "浮点型",
}
# Types whose width the guide asks for; dates, logicals, memos and binaries have none.
TYPES_WITH_LENGTH = frozenset("CNY")
SHARE_TYPES: dict[str, str] = {
    "unconditional": "无条件共享",
    "conditional": "有条件共享",
    "not_shared": "不予共享",
}
SHARE_METHOD_CLASSES: dict[str, str] = {"platform": "共享平台方式", "email": "邮件方式", "media": "介质方式"}
SHARE_METHOD_TYPES: dict[str, str] = {"database": "数据库", "interface": "接口/服务", "file": "文件"}
UPDATE_CYCLES: dict[str, str] = {
    "realtime": "实时",
    "daily": "每日",
    "weekly": "每周",
    "monthly": "每月",
    "quarterly": "每季度",
    "half_yearly": "每半年",
    "yearly": "每年",
    "irregular": "不定期",
}
# Why a resource is kept from the public where opening is the rule (Hainan 003 Art.26).
NOT_OPEN_REASONS: dict[str, str] = {
    "commercial_secret": "涉及商业秘密",
    "personal_privacy": "涉及个人隐私",
    "law_forbids": "法律法规规定不得开放",
}
IDENTIFIER_KINDS: dict[str, str] = {"none": "无", "resident_id": "居民身份证号码", "uscc": "统一社会信用代码"}
SENSITIVITIES: dict[str, str] = {
    "public": "公开",
    "internal": "内部",
    "sensitive": "敏感",
    "personal": "个人信息",
}
MASKING_RULES: dict[str, str] = {
    "none": "不脱敏",
    "resident_id": "证件号码脱敏",
    "name": "姓名脱敏",
    "phone": "电话号码脱敏",
    "address": "地址脱敏",
    "full": "全部遮蔽",
}
OBLIGATION_REASONS: dict[str, str] = {
    "law_revised": "法律法规修订",
    "functions_changed": "行政管理职能变化",
    "onboarded": "新接入平台，编制本部门目录",
    "other": "其他",
}

ResourceClass = Literal["base", "thematic", "departmental"]
FormatCategory = Literal[
    "electronic_file",
    "spreadsheet",
    "database",
    "image",
    "streaming_media",
    "self_describing",
    "service_interface",
]
DataType = Literal["C", "N", "Y", "D", "T", "L", "M", "G", "B", "I", "F"]
ShareType = Literal["unconditional", "conditional", "not_shared"]
ShareMethodClass = Literal["platform", "email", "media"]
ShareMethodType = Literal["database", "interface", "file"]
NotOpenReason = Literal["commercial_secret", "personal_privacy", "law_forbids"]
UpdateCycle = Literal["realtime", "daily", "weekly", "monthly", "quarterly", "half_yearly", "yearly", "irregular"]
IdentifierKind = Literal["none", "resident_id", "uscc"]
Sensitivity = Literal["public", "internal", "sensitive", "personal"]
MaskingRule = Literal["none", "resident_id", "name", "phone", "address", "full"]
ObligationReason = Literal["law_revised", "functions_changed", "other"]


class DataItem(BaseModel):
    """信息项: one field of a resource."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="字段名，如 XM")
    label: str = Field(min_length=1, max_length=100, description="信息项中文名称，如 姓名")
    data_type: DataType = Field(description="数据类型 C/N/Y/D/T/L/M/G/B/I/F")
    length: int | None = Field(default=None, ge=1, le=1_000_000, description="数据长度")
    required: bool = Field(default=False, description="是否必填")
    identifier_kind: IdentifierKind = Field(default="none", description="标识类型")
    sensitivity: Sensitivity = Field(default="internal", description="敏感级别")
    masking_rule: MaskingRule = Field(default="none", description="脱敏规则")


class ResourceContent(BaseModel):
    """Every element of a resource that its department compiles (the platform adds code and publish date)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    resource_class: ResourceClass = Field(description="类：基础/主题/部门")
    category_code: str = Field(pattern=r"^\d{2}$", description="项 编码（2 位）")
    category_name: str = Field(min_length=1, max_length=50, description="项 名称")
    subcategory_code: str = Field(pattern=r"^\d{3}$", description="目 编码（3 位）")
    subcategory_name: str = Field(min_length=1, max_length=50, description="目 名称")
    detail_code: str | None = Field(default=None, pattern=r"^\d{1,6}$", description="细目 编码（可选）")
    detail_name: str | None = Field(default=None, max_length=50, description="细目 名称")
    name: str = Field(min_length=1, max_length=200, description="信息资源名称")
    summary: str = Field(min_length=1, max_length=4000, description="信息资源摘要")
    provider_code: str = Field(min_length=1, max_length=18, description="提供方代码（统一社会信用代码）")
    provider_name: str = Field(min_length=1, max_length=100, description="信息资源提供方")
    format_category: FormatCategory = Field(description="信息资源格式分类")
    format_detail: str = Field(min_length=1, max_length=50, description="具体格式，如 xlsx、OFD、MySQL")
    data_items: list[DataItem] = Field(default_factory=list, max_length=2000, description="信息项")
    share_type: ShareType = Field(description="共享类型")
    share_conditions: str | None = Field(default=None, max_length=4000, description="共享条件")
    legal_basis: str | None = Field(default=None, max_length=4000, description="法律法规或政策依据")
    share_method_class: ShareMethodClass | None = Field(default=None, description="共享方式分类")
    share_method_type: ShareMethodType | None = Field(default=None, description="共享方式类型")
    usage_requirements: str | None = Field(default=None, max_length=4000, description="使用要求")
    cross_level: bool = Field(
        default=False,
        description="是否跨层级共享：上级和下级平台的政务部门可在其目录中查看（经共享平台跨层级共享交换）",
    )
    open_to_public: bool = Field(default=False, description="是否向社会开放")
    open_conditions: str | None = Field(default=None, max_length=4000, description="开放条件")
    not_open_reason: NotOpenReason | None = Field(
        default=None,
        description="不向社会开放的理由：commercial_secret 涉及商业秘密 / personal_privacy 涉及个人隐私 / "
        "law_forbids 法律法规规定不得开放（以开放为原则的地方必填）",
    )
    update_cycle: UpdateCycle = Field(description="更新周期")
    related_codes: list[str] = Field(default_factory=list, max_length=200, description="关联资源代码")
    classified: bool = Field(default=False, description="是否涉密（涉密信息资源不得进入平台）")
    secrecy_reviewed: bool = Field(
        default=False, description="已经保密审查，确认不涉及国家秘密（本地规定要求时登记必填）"
    )

    def classification_code(self) -> str:
        """类 (1 digit) + 项 (2) + 目 (3) + 细目: the front half of a resource code."""
        return CLASS_DIGIT[self.resource_class] + self.category_code + self.subcategory_code + (self.detail_code or "")


def resource_code(classification_code: str, sequence: int) -> str:
    """信息资源代码: classification code "/" a 6-digit sequence number the platform assigns."""
    return f"{classification_code}/{sequence:06d}"


# --- refusals -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldProblem:
    """One refused field: `field` is a dotted path into the resource (data_items.2.length)."""

    field: str
    code: str
    zh: str
    en: str


class DomainError(Exception):
    """A refusal by a catalog rule. `kind` says what sort, so the web layer picks the status once."""

    kind: Literal["invalid", "forbidden", "conflict", "not_found"] = "invalid"
    code = "validation_failed"

    def __init__(
        self,
        zh: str,
        en: str,
        problems: Iterable[FieldProblem] = (),
        *,
        code: str | None = None,
        **details: Any,
    ) -> None:
        super().__init__(en)
        if code:
            self.code = code
        self.zh = zh
        self.en = en
        self.problems = list(problems)
        self.details = details


class RuleViolation(DomainError):
    kind = "invalid"
    code = "validation_failed"


class NotOwner(DomainError):
    kind = "forbidden"
    code = "not_own_department"


class WorkflowConflict(DomainError):
    kind = "conflict"
    code = "workflow_conflict"


class AcceptanceRefused(WorkflowConflict):
    """A project's acceptance refused for its catalog not being on the platform (003 Art.39 (二)): a violation
    too, so it says which project and what is missing."""

    code = "acceptance_refused"

    def __init__(
        self,
        problems: list[FieldProblem],
        *,
        project_id: str,
        project_name: str,
        department_code: str,
        unpublished: tuple[str, ...],
    ) -> None:
        super().__init__(
            "项目信息资源目录尚未全部在平台发布，不能通过验收；已通知该部门限期整改。",
            "Not every resource of the project's catalog is published on the platform; the department is given a "
            "rectification notice.",
            problems,
        )
        self.project_id = project_id
        self.project_name = project_name
        self.department_code = department_code
        self.unpublished = unpublished


class MirroredResource(DomainError):
    """A resource mirrored from a peer platform (a child's, or a parent's shared across levels) is maintained
    there, never here."""

    kind = "forbidden"
    code = "mirrored_resource"


def ensure_local(state: ResourceState) -> None:
    if state.origin_division is not None:
        raise MirroredResource(
            f"该信息资源由平台 {state.origin_division} 编制和维护，本平台只汇聚展示，不能在此修改或撤销。",
            f"This resource is maintained by the platform {state.origin_division}; it is mirrored here and "
            "cannot be changed or withdrawn on this platform.",
            origin_division=state.origin_division,
        )


class Missing(DomainError):
    kind = "not_found"
    code = "not_found"


def violation(problems: list[FieldProblem]) -> RuleViolation:
    return RuleViolation(
        "信息资源未通过校验，请按 details 中列出的字段逐项修改。",
        "The resource breaks catalog rules; fix the fields listed in details.",
        problems,
    )


# --- the rules --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleContext:
    """What the rules need beyond the resource itself.

    department: the caller's department code (a department edits only its own resources).
    live_codes: which of the resource's related codes belong to published resources.
    own_code: the resource's own code, once it has one (it cannot relate to itself).
    published: the live published version, when this is a change to it.
    conditional_needs_policy_basis: the profile switch (Hainan, 003 Art.9).
    secrecy_review_required: the department confirms each resource holds no state secret (Hainan, 003 Art.2, 36).
    """

    department: str | None
    live_codes: frozenset[str] = frozenset()
    own_code: str | None = None
    published: ResourceContent | None = None
    conditional_needs_policy_basis: bool = False
    secrecy_review_required: bool = False
    open_by_default: bool = False


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def check_resource(content: ResourceContent, ctx: RuleContext) -> list[FieldProblem]:
    """Every catalog rule the resource breaks, as field problems (empty when it may be saved)."""
    p: list[FieldProblem] = []
    if ctx.department is None or content.provider_code != ctx.department:
        p.append(
            FieldProblem(
                "provider_code",
                "not_own_department",
                "只能编制本部门的信息资源：提供方代码须为本部门的统一社会信用代码。",
                "A department catalogs only its own resources: provider_code must be your department's code.",
            )
        )
    if content.classified:
        p.append(
            FieldProblem(
                "classified",
                "classified_refused",
                "涉密信息资源不得进入共享平台，请按保密规定另行管理。",
                "Classified (涉密) resources never enter the platform.",
            )
        )
    elif ctx.secrecy_review_required and not content.secrecy_reviewed:
        p.append(
            FieldProblem(
                "secrecy_reviewed",
                "secrecy_review_required",
                "本地规定登记信息资源须先经保密审查：确认该资源不涉及国家秘密后，设置 secrecy_reviewed=true"
                "（已经保密审查）重新提交；涉密信息资源不得进入平台。",
                "This jurisdiction registers a resource only after its secrecy review: confirm it holds no state "
                "secret with secrecy_reviewed=true; classified resources never enter the platform.",
            )
        )
    if content.resource_class == "base" and content.share_type != "unconditional":
        p.append(
            FieldProblem(
                "share_type",
                "base_must_be_unconditional",
                "基础信息资源须无条件共享。",
                "Base resources are shared unconditionally.",
            )
        )
    if content.share_type == "not_shared" and _blank(content.legal_basis):
        p.append(
            FieldProblem(
                "legal_basis",
                "legal_basis_required",
                "不予共享的信息资源须注明法律、行政法规或党中央、国务院政策依据。",
                "A not_shared resource needs its legal basis (law, regulation or central policy).",
            )
        )
    if content.share_type == "conditional":
        if _blank(content.share_conditions):
            p.append(
                FieldProblem(
                    "share_conditions",
                    "share_conditions_required",
                    "有条件共享的信息资源须注明共享条件。",
                    "A conditional resource needs its share conditions.",
                )
            )
        if ctx.conditional_needs_policy_basis and _blank(content.legal_basis):
            p.append(
                FieldProblem(
                    "legal_basis",
                    "policy_basis_required",
                    "本地规定有条件共享的信息资源须提供法律法规或政策依据。",
                    "Under this jurisdiction's rules a conditional resource needs a legal or policy basis.",
                )
            )
    if content.share_type != "not_shared":
        for name in ("share_method_class", "share_method_type"):
            if getattr(content, name) is None:
                p.append(
                    FieldProblem(
                        name,
                        "share_method_required",
                        "可共享的信息资源须注明共享方式（分类和类型）。",
                        "A shared resource needs its share method (class and type).",
                    )
                )
    if ctx.open_by_default and not content.open_to_public and content.not_open_reason is None:
        p.append(
            FieldProblem(
                "not_open_reason",
                "not_open_reason_required",
                "本地规定公共信息资源以开放为原则：不向社会开放的，须注明理由（涉及商业秘密、涉及个人隐私或"
                "法律法规规定不得开放）；否则请设置 open_to_public=true，敏感数据脱敏后开放。",
                "Here opening is the rule: a resource kept from the public names its reason (commercial_secret, "
                "personal_privacy or law_forbids); otherwise set open_to_public=true, sensitive items masked.",
            )
        )
    if content.open_to_public and content.not_open_reason is not None:
        p.append(
            FieldProblem(
                "not_open_reason",
                "open_with_reason_not_to",
                "向社会开放的信息资源不应填写不开放理由。",
                "A resource open to the public has no reason not to be.",
            )
        )
    if content.cross_level and content.share_type == "not_shared":
        p.append(
            FieldProblem(
                "cross_level",
                "not_shared_cannot_cross_level",
                "不予共享的信息资源不能跨层级共享。",
                "A not_shared resource cannot be shared across levels.",
            )
        )
    if content.open_to_public and content.share_type == "not_shared":
        p.append(
            FieldProblem(
                "open_to_public",
                "not_shared_cannot_open",
                "不予共享的信息资源不能向社会开放。",
                "A not_shared resource cannot be open to the public.",
            )
        )
    if content.detail_code and _blank(content.detail_name):
        p.append(
            FieldProblem(
                "detail_name",
                "required",
                "填写了细目编码时须填写细目名称。",
                "detail_code needs detail_name.",
            )
        )
    p.extend(_check_items(content))
    p.extend(_check_related(content, ctx))
    if ctx.published is not None and content.classification_code() != ctx.published.classification_code():
        p.append(
            FieldProblem(
                "resource_class",
                "classification_fixed",
                "已发布信息资源的分类（类/项/目/细目）决定其资源代码，不能变更；如需调整请撤销后重新编目。",
                "A published resource's classification is part of its code and cannot change; withdraw and "
                "register it anew.",
            )
        )
    return p


def _check_items(content: ResourceContent) -> list[FieldProblem]:
    p: list[FieldProblem] = []
    if not content.data_items:
        p.append(FieldProblem("data_items", "required", "至少须登记一个信息项。", "Register at least one data item."))
    seen: set[str] = set()
    for i, item in enumerate(content.data_items):
        at = f"data_items.{i}"
        key = item.name.upper()
        if key in seen:
            p.append(
                FieldProblem(
                    f"{at}.name",
                    "duplicate",
                    f"信息项字段名 {item.name} 重复。",
                    f"Duplicate data item {item.name}.",
                )
            )
        seen.add(key)
        if item.data_type in TYPES_WITH_LENGTH and item.length is None:
            p.append(
                FieldProblem(
                    f"{at}.length",
                    "length_required",
                    f"{DATA_TYPES[item.data_type]}（{item.data_type}）信息项须填写数据长度。",
                    f"A {item.data_type} data item needs its length.",
                )
            )
        if item.identifier_kind != "none" and item.data_type != "C":
            p.append(
                FieldProblem(
                    f"{at}.data_type",
                    "identifier_is_text",
                    f"{IDENTIFIER_KINDS[item.identifier_kind]}须为字符型（C）。",
                    "An identifier data item has data type C.",
                )
            )
        if content.open_to_public and item.sensitivity in ("sensitive", "personal") and item.masking_rule == "none":
            p.append(
                FieldProblem(
                    f"{at}.masking_rule",
                    "masking_required",
                    f"向社会开放的资源中，{SENSITIVITIES[item.sensitivity]}信息项「{item.label}」须指定脱敏规则。",
                    "A sensitive or personal data item of an open resource needs a masking rule.",
                )
            )
    return p


def _check_related(content: ResourceContent, ctx: RuleContext) -> list[FieldProblem]:
    p: list[FieldProblem] = []
    seen: set[str] = set()
    for i, code in enumerate(content.related_codes):
        at = f"related_codes.{i}"
        if code in seen:
            p.append(FieldProblem(at, "duplicate", f"关联资源代码 {code} 重复。", f"Related code {code} is repeated."))
        elif ctx.own_code is not None and code == ctx.own_code:
            p.append(FieldProblem(at, "self_reference", "资源不能关联自身。", "A resource cannot relate to itself."))
        elif code not in ctx.live_codes:
            p.append(
                FieldProblem(
                    at,
                    "related_code_unknown",
                    f"关联资源代码 {code} 不存在或未发布。",
                    f"Related code {code} is not a published resource.",
                )
            )
        seen.add(code)
    return p


def require_valid(content: ResourceContent, ctx: RuleContext) -> None:
    problems = check_resource(content, ctx)
    if problems:
        raise violation(problems)


# --- ownership and the workflow -----------------------------------------------------------------------------

# Resource status: draft (never published) -> published -> withdrawn; an unpublished draft may be discarded.
# Version status: draft -> submitted -> returned -> draft ... -> published -> superseded | withdrawn.
EDITABLE = frozenset({"draft", "returned"})


@dataclass(frozen=True)
class ResourceState:
    id: str
    provider_code: str
    status: str
    code: str | None
    published_version: int | None
    pending_version: int | None
    pending_status: str | None
    latest_version: int
    origin_division: str | None = None  # a child platform's resource mirrored here (federation); None: our own


def ensure_owner(state: ResourceState, department: str | None) -> None:
    if department is None or state.provider_code != department:
        raise NotOwner(
            "只能维护本部门的信息资源（谁编制、谁负责）。",
            "A department maintains only its own resources.",
            [
                FieldProblem(
                    "provider_code",
                    "not_own_department",
                    "该信息资源属于其他部门。",
                    "This resource belongs to another department.",
                )
            ],
        )


def _closed(state: ResourceState) -> None:
    if state.status in ("withdrawn", "discarded"):
        label = "已撤销" if state.status == "withdrawn" else "已删除"
        raise WorkflowConflict(f"该信息资源{label}，不能再变更。", f"The resource is {state.status}.")


@dataclass(frozen=True)
class SavePlan:
    version: int
    new_version: bool


def plan_save(state: ResourceState) -> SavePlan:
    """Where a department's edit goes: the working draft, or a new version of a published resource."""
    _closed(state)
    if state.pending_version is None:
        return SavePlan(state.latest_version + 1, True)
    if state.pending_status not in EDITABLE:
        raise WorkflowConflict(
            "该版本正在审核中，不能修改；请等待审核结果。",
            "This version is under review and cannot be changed until it is decided.",
        )
    return SavePlan(state.pending_version, False)


def pending_editable(state: ResourceState) -> int:
    """The version a department may submit or discard."""
    _closed(state)
    if state.pending_version is None or state.pending_status not in EDITABLE:
        raise WorkflowConflict("没有待提交的草稿。", "There is no draft to submit or discard.")
    return state.pending_version


def pending_under_review(state: ResourceState) -> int:
    _closed(state)
    if state.pending_version is None or state.pending_status != "submitted":
        raise WorkflowConflict("该信息资源没有待审核的版本。", "The resource has no version awaiting review.")
    return state.pending_version


def withdrawable(state: ResourceState) -> int:
    _closed(state)
    if state.status != "published" or state.published_version is None:
        raise WorkflowConflict(
            "只有已发布的信息资源可以撤销；未发布的草稿请直接删除。",
            "Only a published resource can be withdrawn; discard an unpublished draft instead.",
        )
    return state.published_version


def required_text(value: str | None, field_name: str, zh: str, en: str) -> str:
    if _blank(value):
        raise violation([FieldProblem(field_name, "required", zh, en)])
    assert value is not None
    return value.strip()


# --- versions ---------------------------------------------------------------------------------------------


def _flatten(content: Mapping[str, Any] | None) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    if not content:
        return flat
    for key, value in content.items():
        if key == "data_items":
            for item in value or []:
                for k, v in item.items():
                    if k != "name":
                        flat[f"data_items.{item['name']}.{k}"] = v
        else:
            flat[key] = value
    return flat


def diff(before: Mapping[str, Any] | None, after: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Field-level changes from `before` to `after`; data items are matched by name (data_items.XM.length)."""
    a, b = _flatten(before), _flatten(after)
    changes = []
    names_before = {i["name"] for i in (before or {}).get("data_items") or []}
    names_after = {i["name"] for i in after.get("data_items") or []}
    for name in sorted(names_after - names_before):
        if before is not None:
            changes.append({"field": f"data_items.{name}", "change": "added", "before": None, "after": name})
    for name in sorted(names_before - names_after):
        changes.append({"field": f"data_items.{name}", "change": "removed", "before": name, "after": None})
    touched = {f"data_items.{n}" for n in names_before ^ names_after}
    for key in sorted(a.keys() | b.keys()):
        if key.rsplit(".", 1)[0] in touched:
            continue
        if a.get(key) != b.get(key):
            changes.append({"field": key, "change": "changed", "before": a.get(key), "after": b.get(key)})
    return changes


# --- obligations and projects -------------------------------------------------------------------------------


def is_overdue(due: date, today: date) -> bool:
    """A deadline of N working days ends with its due date; the obligation is late from the next day."""
    return today > due


@dataclass(frozen=True)
class ProjectResource:
    id: str
    name: str
    status: str


def acceptance_problems(resources: list[ProjectResource]) -> list[FieldProblem]:
    """At acceptance every resource in a project's catalog must be on the platform (published)."""
    if not resources:
        return [
            FieldProblem(
                "resource_ids",
                "project_catalog_missing",
                "项目未登记信息资源目录。",
                "The project has not registered its resource catalog.",
            )
        ]
    return [
        FieldProblem(
            f"resource_ids.{i}",
            "resource_unpublished",
            f"项目信息资源「{r.name}」尚未在平台发布。",
            f"Project resource {r.name!r} is not published on the platform.",
        )
        for i, r in enumerate(resources)
        if r.status != "published"
    ]


# --- repeated collection (R2.1, 000 Art.15, 003 Art.14 and Art.39) ------------------------------------------


@dataclass(frozen=True)
class BaseResourceItems:
    """A published base resource of another department, and its data items as (name, label)."""

    code: str
    name: str
    provider_code: str
    items: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RepeatedCollection:
    """What a resource collects again of one base resource: the base resource and the duplicated item names."""

    base_code: str
    base_name: str
    base_provider_code: str
    items: tuple[str, ...]


def repeated_collection(content: ResourceContent, bases: list[BaseResourceItems]) -> RepeatedCollection | None:
    """The base resource whose data this resource collects again, if any.

    Data that can be had by sharing is not collected again. Identifier items (resident ID, USCC) link records
    and are meant to be carried, so they never count; a resource collects again when half or more of its other
    items — the same field name or the same Chinese label — are items of one base resource another department
    provides. The base resource with the most duplicated items is named.
    """
    own = [i for i in content.data_items if i.identifier_kind == "none"]
    if not own:
        return None
    found: RepeatedCollection | None = None
    for base in bases:
        if base.provider_code == content.provider_code:
            continue
        names = {n.upper() for n, _ in base.items}
        labels = {label for _, label in base.items}
        duplicated = tuple(i.name for i in own if i.name.upper() in names or i.label in labels)
        if 2 * len(duplicated) >= len(own) and duplicated and (found is None or len(duplicated) > len(found.items)):
            found = RepeatedCollection(base.code, base.name, base.provider_code, duplicated)
    return found


def vocabulary() -> dict[str, dict[str, str]]:
    """The guide's code lists with Chinese labels, for forms and spreadsheets."""
    return {
        "resource_class": RESOURCE_CLASSES,
        "base_category": BASE_CATEGORIES,
        "thematic_category": THEMATIC_CATEGORIES,
        "format_category": FORMAT_CATEGORIES,
        "data_type": DATA_TYPES,
        "share_type": SHARE_TYPES,
        "share_method_class": SHARE_METHOD_CLASSES,
        "share_method_type": SHARE_METHOD_TYPES,
        "update_cycle": UPDATE_CYCLES,
        "identifier_kind": IDENTIFIER_KINDS,
        "sensitivity": SENSITIVITIES,
        "masking_rule": MASKING_RULES,
        "obligation_reason": OBLIGATION_REASONS,
        "not_open_reason": NOT_OPEN_REASONS,
    }
