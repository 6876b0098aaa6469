// A single-page app as people write it with oidc-client-ts: the code flow with PKCE as a
// public client, the user's claims from userinfo, a refresh, and RP-initiated logout. Every
// call to latchkey is cross-origin (this page is served from another port). Each step writes
// its outcome into an element the test waits for: #signed-in, #refreshed, #signed-out, or
// #error with the message oidc-client-ts threw.
"use strict";

const authority = document.querySelector("meta[name=authority]").content;
const here = window.location.origin;
const manager = new oidc.UserManager({
  authority,
  client_id: "spa",
  redirect_uri: here + "/callback.html",
  post_logout_redirect_uri: here + "/signed-out.html",
  response_type: "code",
  scope: "openid profile email",
  loadUserInfo: true,
  automaticSilentRenew: false,
  userStore: new oidc.WebStorageStateStore({ store: window.localStorage }),
});

function report(id, value) {
  const element = document.createElement("pre");
  element.id = id;
  element.textContent = JSON.stringify(value);
  document.getElementById("results").appendChild(element);
}

function summary(user) {
  return {
    sub: user.profile.sub,
    name: user.profile.name,
    email: user.profile.email,
    auth_time: user.profile.auth_time,
    id_token: user.id_token,
    access_token: user.access_token,
    refresh_token: user.refresh_token,
    scope: user.scope,
  };
}

async function step(id, action) {
  try {
    report(id, await action());
  } catch (error) {
    report("error", { step: id, message: String(error && error.message ? error.message : error) });
  }
}

document.getElementById("sign-in").onclick = () =>
  step("redirecting", () => manager.signinRedirect({ state: { from: "sign-in" } }));

document.getElementById("refresh").onclick = () =>
  step("refreshed", async () => summary(await manager.signinSilent()));

document.getElementById("sign-out").onclick = () =>
  step("redirecting", () => manager.signoutRedirect({ state: { from: "sign-out" } }));

switch (window.location.pathname) {
  case "/callback.html":
    step("signed-in", async () => {
      const user = await manager.signinRedirectCallback();
      return { ...summary(user), state: user.state };
    });
    break;
  case "/signed-out.html":
    step("signed-out", async () => {
      const response = await manager.signoutRedirectCallback();
      return { state: response.userState, user: await manager.getUser() };
    });
    break;
}
