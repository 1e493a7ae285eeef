"""Every catalog rule refuses bad input with a field-level error and changes nothing; departments and roles
are kept apart."""

from __future__ import annotations

from catalog_helpers import CIVIL, PSB, SAMR, fields_of, resource_body

API = "/api/v1/catalog"


async def _publish(c, body: dict, dept: dict) -> dict:
    rid = (await c.http.post(f"{API}/resources", json=body, headers=dept)).json()["id"]
    await c.http.post(f"{API}/resources/{rid}/submit", headers=dept)
    resp = await c.http.post(f"{API}/resources/{rid}/publish", headers=c.platform_admin())
    assert resp.status_code == 200, resp.text
    return resp.json()


async def test_each_rule_refuses_with_a_field_error_and_changes_nothing(catalog) -> None:
    async with catalog() as c:
        dept = c.dept_admin(PSB)
        base = resource_body(
            resource_class="base",
            category_code="01",
            category_name="人口",
            subcategory_code="001",
            subcategory_name="人口基本信息",
            name="人口基本信息",
        )
        population = await _publish(c, base, dept)
        before = await c.counts()

        cases = [
            # not_shared needs a legal basis
            (
                resource_body(share_type="not_shared", share_method_class=None, share_method_type=None),
                {"legal_basis": "legal_basis_required"},
            ),
            # conditional needs its conditions
            (
                resource_body(share_type="conditional", legal_basis="《户口登记条例》"),
                {"share_conditions": "share_conditions_required"},
            ),
            # base resources are unconditional
            (
                {
                    **base,
                    "name": "流动人口信息",
                    "share_type": "conditional",
                    "share_conditions": "核验",
                    "legal_basis": "依据",
                },
                {"share_type": "base_must_be_unconditional"},
            ),
            # classified (涉密) resources never enter
            (resource_body(classified=True), {"classified": "classified_refused"}),
            # related codes must exist (and be published)
            (
                resource_body(related_codes=[population["code"], "301999/000042"]),
                {"related_codes.1": "related_code_unknown"},
            ),
            # a department catalogs only its own resources
            (resource_body(SAMR), {"provider_code": "not_own_department"}),
            # data items: C needs a length; names are unique
            (
                resource_body(
                    data_items=[
                        {"name": "XM", "label": "姓名", "data_type": "C"},
                        {"name": "xm", "label": "姓名2", "data_type": "D"},
                    ]
                ),
                {"data_items.0.length": "length_required", "data_items.1.name": "duplicate"},
            ),
            # an open resource masks its personal items
            (
                resource_body(
                    open_to_public=True,
                    data_items=[
                        {
                            "name": "XM",
                            "label": "姓名",
                            "data_type": "C",
                            "length": 50,
                            "sensitivity": "personal",
                        }
                    ],
                ),
                {"data_items.0.masking_rule": "masking_required"},
            ),
        ]
        for body, expected in cases:
            resp = await c.http.post(f"{API}/resources", json=body, headers=dept)
            assert resp.status_code == 422, (expected, resp.text)
            assert fields_of(resp) == expected, resp.json()
            assert resp.json()["code"] == "validation_failed"
        assert await c.counts() == before

        # The same rules guard edits of an existing draft and changes of a published resource.
        rid = population["id"]
        resp = await c.http.put(
            f"{API}/resources/{rid}/draft",
            json={
                **base,
                "share_type": "not_shared",
                "share_method_class": None,
                "share_method_type": None,
                "legal_basis": "某法",
            },
            headers=dept,
        )
        assert fields_of(resp) == {"share_type": "base_must_be_unconditional"}
        moved = await c.http.put(f"{API}/resources/{rid}/draft", json={**base, "subcategory_code": "002"}, headers=dept)
        assert fields_of(moved) == {"resource_class": "classification_fixed"}
        assert await c.counts() == before

        # A missing field is a field-level error too (pydantic's own validation).
        missing = await c.http.post(f"{API}/resources", json={**resource_body(), "summary": ""}, headers=dept)
        assert missing.status_code == 422 and "summary" in fields_of(missing)
        assert await c.counts() == before


async def test_conditional_needs_a_policy_basis_under_the_hainan_profile(catalog) -> None:
    body = resource_body(
        share_type="conditional",
        share_conditions="仅限核验使用",
        secrecy_reviewed=True,
        not_open_reason="personal_privacy",
    )
    async with catalog(profile="hainan") as c:
        before = await c.counts()
        resp = await c.http.post(f"{API}/resources", json=body, headers=c.dept_admin(PSB))
        assert fields_of(resp) == {"legal_basis": "policy_basis_required"}
        assert await c.counts() == before
        ok = await c.http.post(
            f"{API}/resources",
            json={**body, "legal_basis": "《海南省公共信息资源管理办法》第九条"},
            headers=c.dept_admin(PSB),
        )
        assert ok.status_code == 201
    async with catalog(profile="zhonglou") as c:
        assert (await c.http.post(f"{API}/resources", json=body, headers=c.dept_admin(PSB))).status_code == 201


async def test_registration_needs_the_secrecy_review_under_the_hainan_profile(catalog) -> None:
    # 003 Art.2, 36: only non-classified resources enter; each registration confirms its secrecy review.
    body = resource_body(not_open_reason="personal_privacy")
    async with catalog(profile="hainan") as c:
        before = await c.counts()
        resp = await c.http.post(f"{API}/resources", json=body, headers=c.dept_admin(PSB))
        assert resp.status_code == 422 and fields_of(resp) == {"secrecy_reviewed": "secrecy_review_required"}
        assert "保密审查" in resp.json()["message"] + str(resp.json()["details"])
        assert await c.counts() == before
        confirmed_classified = {**body, "secrecy_reviewed": True, "classified": True}
        resp = await c.http.post(f"{API}/resources", json=confirmed_classified, headers=c.dept_admin(PSB))
        assert fields_of(resp) == {"classified": "classified_refused"}
        ok = await c.http.post(f"{API}/resources", json={**body, "secrecy_reviewed": True}, headers=c.dept_admin(PSB))
        assert ok.status_code == 201, ok.text
    async with catalog(profile="zhonglou") as c:
        assert (await c.http.post(f"{API}/resources", json=body, headers=c.dept_admin(PSB))).status_code == 201


async def test_opening_is_the_rule_under_the_hainan_profile(catalog) -> None:
    # 003 Art.26: what holds no commercial secret or personal privacy and no law keeps closed is opened.
    closed = resource_body(secrecy_reviewed=True)
    async with catalog(profile="hainan") as c:
        psb = c.dept_admin(PSB)
        before = await c.counts()
        resp = await c.http.post(f"{API}/resources", json=closed, headers=psb)
        assert resp.status_code == 422 and fields_of(resp) == {"not_open_reason": "not_open_reason_required"}
        assert "以开放为原则" in str(resp.json()["details"])
        assert await c.counts() == before
        both = {**closed, "open_to_public": True, "not_open_reason": "law_forbids"}
        resp = await c.http.post(f"{API}/resources", json=both, headers=psb)
        assert fields_of(resp) == {"not_open_reason": "open_with_reason_not_to"}
        reasoned = {**closed, "not_open_reason": "commercial_secret"}
        assert (await c.http.post(f"{API}/resources", json=reasoned, headers=psb)).status_code == 201
        opened = {**closed, "open_to_public": True}  # its personal items carry masking rules
        assert (await c.http.post(f"{API}/resources", json=opened, headers=psb)).status_code == 201
        unknown = {**closed, "not_open_reason": "not_wanted"}
        assert (await c.http.post(f"{API}/resources", json=unknown, headers=psb)).status_code == 422
        reference = (await c.http.get(f"{API}/reference")).json()
        assert reference["rules"]["open_by_default"] is True
        assert reference["vocabulary"]["not_open_reason"]["personal_privacy"] == "涉及个人隐私"
    async with catalog(profile="zhonglou") as c:
        # Where opening is not the rule, a resource is simply not open.
        assert (await c.http.post(f"{API}/resources", json=closed, headers=c.dept_admin(PSB))).status_code == 201


async def test_departments_cannot_touch_each_others_resources_and_roles_are_enforced(catalog) -> None:
    async with catalog() as c:
        psb = c.dept_admin(PSB)
        rid = (await c.http.post(f"{API}/resources", json=resource_body(), headers=psb)).json()["id"]
        before = await c.counts()

        other = c.dept_admin(CIVIL)
        attempts = [
            await c.http.put(f"{API}/resources/{rid}/draft", json=resource_body(), headers=other),
            await c.http.post(f"{API}/resources/{rid}/submit", headers=other),
            await c.http.delete(f"{API}/resources/{rid}/draft", headers=other),
        ]
        assert [a.status_code for a in attempts] == [403, 403, 403]
        assert all(fields_of(a) == {"provider_code": "not_own_department"} for a in attempts)
        assert await c.counts() == before
        # Nor may it read another department's draft.
        assert (await c.http.get(f"{API}/resources/{rid}", headers=other)).status_code == 404

        await c.http.post(f"{API}/resources/{rid}/submit", headers=psb)
        await c.http.post(f"{API}/resources/{rid}/publish", headers=c.platform_admin())
        before = await c.counts()
        attempts = [
            await c.http.put(f"{API}/resources/{rid}/draft", json=resource_body(), headers=other),
            await c.http.post(f"{API}/resources/{rid}/withdraw", json={"reason": "试试"}, headers=other),
        ]
        assert [a.status_code for a in attempts] == [403, 403]
        assert all(fields_of(a) == {"provider_code": "not_own_department"} for a in attempts)
        assert await c.counts() == before

        # A principal of the same department without dept_admin cannot create, edit or submit.
        await c.http.put(f"{API}/resources/{rid}/draft", json=resource_body(change_reason="补充"), headers=psb)
        before = await c.counts()
        reviewer = c.user(["dept_reviewer", "dept_system"], department=PSB)
        refused = [
            await c.http.post(f"{API}/resources/{rid}/submit", headers=reviewer),
            await c.http.post(f"{API}/resources", json=resource_body(), headers=reviewer),
        ]
        assert [r.status_code for r in refused] == [403, 403]
        assert refused[0].json()["details"]["required_roles"] == ["dept_admin"]
        # Only the platform office reviews; a department cannot publish its own resource.
        await c.http.post(f"{API}/resources/{rid}/submit", headers=psb)
        before = await c.counts()
        assert (await c.http.post(f"{API}/resources/{rid}/publish", headers=psb)).status_code == 403
        assert (
            await c.http.post(f"{API}/resources/{rid}/return", json={"comment": "x"}, headers=psb)
        ).status_code == 403
        # Nobody without a token.
        assert (await c.http.get(f"{API}/resources/{rid}")).status_code == 401
        assert await c.counts() == before


async def test_withdrawn_related_resource_blocks_publication_of_a_resource_pointing_at_it(catalog) -> None:
    async with catalog() as c:
        psb, civil, admin = c.dept_admin(PSB), c.dept_admin(CIVIL), c.platform_admin()
        population = await _publish(c, resource_body(name="人口基本信息"), psb)
        rid = (
            await c.http.post(
                f"{API}/resources",
                json=resource_body(CIVIL, related_codes=[population["code"]]),
                headers=civil,
            )
        ).json()["id"]
        await c.http.post(f"{API}/resources/{rid}/submit", headers=civil)
        await c.http.post(f"{API}/resources/{population['id']}/withdraw", json={"reason": "合并"}, headers=admin)
        before = await c.counts()
        resp = await c.http.post(f"{API}/resources/{rid}/publish", headers=admin)
        assert fields_of(resp) == {"related_codes.0": "related_code_unknown"}
        assert await c.counts() == before
