"""The catalog rules as pure functions: no service, no database."""

from __future__ import annotations

from catalog_helpers import PSB, resource_body

from catalog_svc import domain, search
from catalog_svc.domain import ResourceContent, RuleContext


def content(**kw: object) -> ResourceContent:
    return ResourceContent.model_validate(resource_body(**kw))


def test_valid_resource_has_no_problems_and_codes_follow_the_guide() -> None:
    c = content()
    assert domain.check_resource(c, RuleContext(department=PSB)) == []
    assert c.classification_code() == "301002"
    assert domain.resource_code(c.classification_code(), 17) == "301002/000017"
    assert content(resource_class="base", detail_code="01", detail_name="常住").classification_code() == "10100201"


def test_policy_basis_depends_on_the_profile() -> None:
    c = content(share_type="conditional", share_conditions="仅限核验")
    assert domain.check_resource(c, RuleContext(department=PSB)) == []
    strict = RuleContext(department=PSB, conditional_needs_policy_basis=True)
    assert [p.field for p in domain.check_resource(c, strict)] == ["legal_basis"]


def test_diff_names_changed_fields_and_items_by_name() -> None:
    before = content().model_dump(mode="json")
    after = content(summary="新摘要").model_dump(mode="json")
    after["data_items"][1]["length"] = 100
    after["data_items"].append({**after["data_items"][2], "name": "QYYY", "label": "迁移原因"})
    changes = domain.diff(before, after)
    assert [(c["field"], c["change"]) for c in changes] == [
        ("data_items.QYYY", "added"),
        ("data_items.QCD.length", "changed"),
        ("summary", "changed"),
    ]


def test_workflow_refuses_edits_under_review_and_withdrawal_of_drafts() -> None:
    state = domain.ResourceState("r", PSB, "published", "301002/000001", 1, 2, "submitted", 2)
    try:
        domain.plan_save(state)
    except domain.WorkflowConflict:
        pass
    else:
        raise AssertionError("edit under review allowed")
    draft = domain.ResourceState("r", PSB, "draft", None, None, 1, "draft", 1)
    try:
        domain.withdrawable(draft)
    except domain.WorkflowConflict:
        pass
    else:
        raise AssertionError("draft withdrawn")
    assert domain.plan_save(domain.ResourceState("r", PSB, "published", "c", 1, None, None, 1)) == domain.SavePlan(
        2, True
    )


def test_search_document_weights_and_query_alternatives() -> None:
    doc = search.document("户籍人口信息", "统计户籍", ["姓名"])
    # 户籍人口 is a domain word: indexed whole and as its parts; the summary's 户籍 adds a B position.
    assert "'户籍':1A,4B" in doc and "'人口':2A" in doc and "'姓名':5C" in doc and "信息" not in doc
    q = search.text_query("户籍人口 统计")
    assert q is not None
    # Strictly every word; relaxed any word (or a shorter word inside one); the name-only forms weigh A.
    assert q.words == ["户籍", "人口", "统计"]
    assert q.every_word == "'户籍' & '人口' & '统计'"
    assert q.any_word == "'户籍' | '人口' | '统计'"
    assert q.every_word_in_name == "'户籍':A & '人口':A & '统计':A"
    compound = search.text_query("社会保险")
    assert compound is not None and compound.any_word == "'社会保险' | '社会' | '保险'"
    assert search.text_query("  ，。 ") is None
