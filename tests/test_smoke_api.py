from conftest import error_of, need_data


def test_whole_loop_over_the_api(client, make_user, make_provider, mailbox):
    r = client.post("/api/v1/users", json={"email": "Cat@Example.com", "password": "long enough pw",
                                          "name": "Cat"})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["email"] == "cat@example.com"
    # Following the link mailed to the address confirms it (a rating counts only then).
    assert client.get(mailbox.last("cat@example.com").link()).status_code == 302
    r = client.post("/api/v1/tokens", json={"email": "cat@example.com", "password": "long enough pw"})
    assert r.status_code == 201
    token = r.get_json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    r = client.get("/api/v1/me", headers=auth)
    assert r.get_json()["provider"] is None
    r = client.post("/api/v1/needs", json=need_data(), headers=auth)
    assert r.status_code == 201, r.get_json()
    need = r.get_json()
    assert need["status"] == "open"
    pro = make_provider()
    r = pro.get(f"/api/v1/needs/{need['id']}")
    assert r.status_code == 200
    assert r.get_json()["location"]["approximate"] is True
    assert r.get_json()["customer"] is None and r.get_json()["address"] is None
    r = pro.post(f"/api/v1/needs/{need['id']}/offers", json={"price": {"amount": 35000, "currency": "USD"},
                                                            "message": "I can do it"})
    assert r.status_code == 201, r.get_json()
    offer = r.get_json()
    assert offer["status"] == "pending"
    r = client.post(f"/api/v1/offers/{offer['id']}/messages", json={"body": "Vegan too?"}, headers=auth)
    assert r.status_code == 201, r.get_json()
    r = client.post(f"/api/v1/offers/{offer['id']}/accept", headers=auth)
    assert r.status_code == 200, r.get_json()
    r = pro.get(f"/api/v1/needs/{need['id']}")
    assert r.get_json()["customer"]["email"] == "cat@example.com"
    assert r.get_json()["address"] == "100 Congress Ave, Austin"
    r = client.post(f"/api/v1/needs/{need['id']}/complete", headers=auth)
    assert r.status_code == 200 and r.get_json()["status"] == "completed"
    r = client.post(f"/api/v1/needs/{need['id']}/rating", json={"stars": 5, "comment": "Great"},
                    headers=auth)
    assert r.status_code == 201, r.get_json()
    rating = r.get_json()
    r = pro.post(f"/api/v1/ratings/{rating['id']}/reply", json={"body": "Thanks!"})
    assert r.status_code == 201
    r = client.get(f"/api/v1/providers/{pro.provider.handle}")
    rep = r.get_json()["reputation"]
    assert rep["count"] == 1 and rep["histogram"]["5"] == 1 and rep["completed_jobs"] == 1
    r = client.get(f"/api/v1/providers/{pro.provider.handle}/ratings")
    assert r.get_json()["items"][0]["reply"] == "Thanks!"
    r = client.get("/api/v1/needs/99999", headers=auth)
    assert r.status_code == 404 and error_of(r)["code"] == "not_found"
