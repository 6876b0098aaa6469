"""A relying party built on pyoidc (the `oic` package): discovery, the code flow with PKCE as a
confidential client, the id_token check, pyoidc's default userinfo call and a refresh.

Usage: pyoidc_rp.py ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USERNAME PASSWORD
Prints one line per step; exits non-zero on the first failure.
"""

import html
import re
import sys
from urllib.parse import parse_qs, urlparse

import requests
from oic import rndstr
from oic.oic import Client
from oic.oic.message import AuthorizationResponse, RegistrationResponse
from oic.utils.authn.client import CLIENT_AUTHN_METHOD


def hidden(page, name):
    match = re.search(r'name="%s" value="([^"]*)"' % name, page)
    if not match:
        sys.exit("no %s field in the page:\n%s" % (name, page))
    return html.unescape(match.group(1))


def main():
    issuer, client_id, secret, redirect, username, password = sys.argv[1:7]
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(issuer)
    print("discovery ok:", client.provider_info["issuer"])
    client.store_registration_info(
        RegistrationResponse(client_id=client_id, client_secret=secret, redirect_uris=[redirect])
    )
    client.redirect_uris = [redirect]
    state, nonce = rndstr(), rndstr()
    challenge, verifier = client.add_code_challenge()
    args = {
        "client_id": client_id,
        "response_type": "code",
        "scope": ["openid", "profile", "email", "offline_access"],
        "nonce": nonce,
        "redirect_uri": redirect,
        "state": state,
    }
    args.update(challenge)
    request = client.construct_AuthorizationRequest(request_args=args)
    url = request.request(client.authorization_endpoint)

    browser = requests.Session()
    page = browser.get(url, allow_redirects=False)
    if page.status_code != 200:
        sys.exit("authorize answered %d" % page.status_code)
    form = {
        "username": username,
        "password": password,
        "csrf_token": hidden(page.text, "csrf_token"),
        "request": hidden(page.text, "request"),
    }
    answer = browser.post(issuer + "/login", data=form, allow_redirects=False)
    if answer.status_code == 200 and 'name="decision"' in answer.text:
        consent = {
            "decision": "allow",
            "csrf_token": hidden(answer.text, "csrf_token"),
            "request": hidden(answer.text, "request"),
        }
        answer = browser.post(issuer + "/consent", data=consent, allow_redirects=False)
    if answer.status_code != 303:
        sys.exit("sign-in answered %d:\n%s" % (answer.status_code, answer.text))
    location = answer.headers["Location"]
    query = urlparse(location).query
    response = client.parse_response(AuthorizationResponse, info=query, sformat="urlencoded")
    if response["state"] != state:
        sys.exit("state mismatch")
    print("code ok, iss:", parse_qs(query)["iss"][0])

    tokens = client.do_access_token_request(
        state=state,
        request_args={"code": response["code"], "code_verifier": verifier},
        authn_method="client_secret_basic",
    )
    id_token = tokens["id_token"]
    if id_token["nonce"] != nonce or id_token["iss"] != issuer:
        sys.exit("id_token claims wrong: %s" % id_token.to_dict())
    print("tokens ok, sub:", id_token["sub"])

    # pyoidc's default userinfo call: POST with the token in the body.
    info = client.do_user_info_request(state=state)
    if info["sub"] != id_token["sub"] or info.get("preferred_username") != username:
        sys.exit("userinfo wrong: %s" % info.to_dict())
    print("userinfo ok:", info["preferred_username"])

    refreshed = client.do_access_token_refresh(state=state, authn_method="client_secret_basic")
    if "access_token" not in refreshed:
        sys.exit("refresh failed: %s" % refreshed.to_dict())
    print("refresh ok")


if __name__ == "__main__":
    main()
