from tests.conftest import new_case, upload
from tests.test_web_support import login, set_passwords, post
from dossier_service.samples import make_pdf

def test_smoke(client, world, container):
    set_passwords(container, "canton", "aarau", "auditor")
    r = login(client, "canton")
    assert r.status_code == 302, r.get_data(as_text=True)
    case = new_case(client, world)
    upload(client, world, "canton", case["id"], make_pdf("Kurz", ["Deutschkurs besucht"]), doc_type="short_assessment")
    for path in ["/", "/cases", f"/cases/{case['id']}", "/search?q=Deutschkurs", "/notifications", "/reports/ias", f"/cases/{case['id']}/transfer", f"/cases/{case['id']}/cost-approvals"]:
        r = client.get(path, follow_redirects=True)
        print(path, r.status_code)
        assert r.status_code == 200, r.get_data(as_text=True)[:3000]
    r = client.get(f"/cases/{case['id']}")
    open("/tmp/case.html","w").write(r.get_data(as_text=True))
    r = client.get("/search?q=Deutschkurs")
    open("/tmp/search.html","w").write(r.get_data(as_text=True))
