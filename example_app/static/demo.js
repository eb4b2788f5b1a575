// The onboarding demo: a little vanilla JS over the library's JSON routes. No framework, no build.
"use strict";

const prefix = document.body.dataset.prefix;
const mock = document.body.dataset.mock === "true";
const USER_ID = "demo-user"; // mock mode reads the user from the body; live mode from the session
const STEPS = ["consent", "pan", "bank", "aadhaar", "payment"];
const SETTLED = ["SUCCESS", "FAILURE", "EXPIRED"];
const POLL_MS = 1500;
const CALLBACK_WAIT_POLLS = 20; // after settling, how long the timeline waits for the callback
let consent = null;

// -- steps ------------------------------------------------------------------------------------

function go(step) {
  const index = STEPS.indexOf(step);
  for (const [i, name] of STEPS.entries()) {
    document.getElementById("step-" + name).hidden = name !== step;
    const item = document.querySelector(`#steps [data-step="${name}"]`);
    item.classList.toggle("done", i < index);
    if (name === step) item.setAttribute("aria-current", "step"); else item.removeAttribute("aria-current");
  }
  document.getElementById("h-" + step).focus(); // screen readers start at the new step
}

function remember(text) {
  document.getElementById("summary-empty")?.remove();
  const item = document.createElement("li");
  item.textContent = text;
  document.getElementById("summary").append(item);
}

function masked(value, keep) {
  return "•".repeat(Math.max(value.length - keep, 0)) + value.slice(-keep);
}

// -- calls with busy states and field errors --------------------------------------------------

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function clearErrors(form) {
  for (const box of form.querySelectorAll(".field-error, .form-error")) box.textContent = "";
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

// Put each message next to its input; what has no input goes to the form's alert line.
function showErrors(form, fields, message) {
  const loose = [];
  let first = null;
  for (const [name, messages] of Object.entries(fields || {})) {
    const box = form.querySelector(`[data-for="${CSS.escape(name)}"]`);
    const text = [].concat(messages).join(" ");
    if (!box) { loose.push(text); continue; }
    box.textContent = text;
    const input = form.querySelector(`[data-field="${CSS.escape(name)}"], [name="${CSS.escape(name)}"]`);
    if (input) { input.setAttribute("aria-invalid", "true"); first = first || input; }
  }
  if (loose.length || (!first && message)) form.querySelector(".form-error").textContent = loose.join(" ") || message;
  (first || form.querySelector("button[type=submit]")).focus();
}

// One request at a time per form: the button is disabled and says what is happening.
async function send(form, url, options) {
  if (form.getAttribute("aria-busy") === "true") return null;
  const button = form.querySelector("button[type=submit]");
  const label = button.textContent;
  form.setAttribute("aria-busy", "true");
  button.disabled = true;
  button.textContent = button.dataset.busy || "Working…";
  clearErrors(form);
  try {
    const response = await fetch(url, options);
    let body = null;
    try { body = await response.json(); } catch { body = null; }
    return {http: response.status, body: body || {status: "FAILURE", error: {message: `HTTP ${response.status}`}}};
  } catch {
    return {http: 0, body: {status: "FAILURE", error: {code: "NETWORK", message: "The server could not be reached; try again."}}};
  } finally {
    form.removeAttribute("aria-busy");
    button.disabled = false;
    button.textContent = label;
  }
}

// KYC calls carry the consent given in step 1; a payment carries none.
function postJson(form, body, {headers = {}, withConsent = true} = {}) {
  return send(form, prefix + form.dataset.path, {
    method: "POST", headers: {"Content-Type": "application/json", ...headers},
    body: JSON.stringify({...body, user_id: USER_ID, ...(withConsent ? {consent} : {})}),
  });
}

// A completed call: SUCCESS runs ``done``; a refusal is shown by its inputs (``field`` takes a
// FAILURE the API gave about the document itself, such as an invalid PAN).
function settle(form, result, done, field) {
  if (!result) return;
  const {body} = result;
  if (body.status === "FAILURE") {
    const error = body.error || {};
    const fields = error.fields || (field ? {[field]: [explain(error, form.id)]} : {});
    showErrors(form, fields, explain(error, form.id));
    return;
  }
  done(body.data || {});
}

// What a refusal means depends on what was checked: a bank account is not a "document".
const BY_FORM = {
  "bank-form": {INVALID_DOCUMENT: "The bank says this account does not exist or cannot take money."},
};

function explain(error, formId) {
  const specific = (BY_FORM[formId] || {})[error.code];
  if (specific) return specific;
  const known = {
    INVALID_DOCUMENT: "Decentro says this document is not valid.",
    NO_RECORD: "No record was found for this document.",
    CONSENT_REQUIRED: "Consent is required first.",
    RATE_LIMITED: "Too many attempts; wait a minute.",
  };
  return known[error.code] || error.message || "Something went wrong; try again.";
}

// -- 1. consent -------------------------------------------------------------------------------

document.getElementById("consent-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  clearErrors(form);
  if (!form.agree.checked) {
    showErrors(form, {agree: ["Tick the box to agree, or the checks cannot run."]});
    return;
  }
  consent = {given: true, text: document.getElementById("consent-text").textContent.replace(/\s+/g, " ").trim(),
             purpose: "Demo customer onboarding identity verification"};
  remember("Consent recorded with each check");
  go("pan");
});

// -- 2. PAN, 3. bank account ------------------------------------------------------------------

document.getElementById("pan-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {pan: form.pan.value.trim().toUpperCase()};
  if (form.name.value.trim()) body.name = form.name.value.trim();
  settle(form, await postJson(form, body), (data) => {
    remember(`PAN ${body.pan.slice(0, 5)}••••${body.pan.slice(-1)} valid`);
    go("bank");
  }, "pan");
});

document.getElementById("bank-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const body = {account_number: form.account_number.value.trim(), ifsc: form.ifsc.value.trim().toUpperCase()};
  settle(form, await postJson(form, body), () => {
    remember(`Bank account ${masked(body.account_number, 4)} exists`);
    go("aadhaar");
  }, "account_number");
});

// -- 4. Aadhaar: OTP or the offline file ------------------------------------------------------

let initiationId = null;
for (const radio of document.querySelectorAll("input[name=aadhaar-way]")) {
  radio.addEventListener("change", () => {
    const file = radio.value === "file" && radio.checked;
    document.getElementById("file-form").hidden = !file;
    document.getElementById("otp-start-form").hidden = file;
    document.getElementById("otp-verify-form").hidden = file || !initiationId;
  });
}

document.getElementById("otp-start-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  settle(form, await postJson(form, {aadhaar_number: form.aadhaar_number.value.replace(/\s+/g, "")}), (data) => {
    initiationId = data.initiation_id;
    const verify = document.getElementById("otp-verify-form");
    verify.hidden = false;
    document.getElementById("otp-sent").textContent = "An OTP was sent to the phone linked to this Aadhaar.";
    verify.otp.focus();
  }, "aadhaar_number");
});

function aadhaarDone(data) {
  const typed = document.getElementById("otp-start-form").aadhaar_number.value.replace(/\s+/g, "");
  const last4 = data.aadhaar_last4 || (initiationId ? typed.slice(-4) : "");
  remember(last4 ? `Aadhaar ending ${last4} verified` : "Aadhaar verified");
  go("payment");
}

document.getElementById("otp-verify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  settle(form, await postJson(form, {initiation_id: initiationId, otp: form.otp.value.trim()}), aadhaarDone, "otp");
});

document.getElementById("file-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const data = new FormData();
  if (form.file.files.length) data.append("file", form.file.files[0]);
  data.append("share_code", form.share_code.value.trim());
  data.append("user_id", USER_ID);
  data.append("consent", JSON.stringify(consent));
  settle(form, await send(form, prefix + form.dataset.path, {method: "POST", body: data}), aadhaarDone, "file");
});

// -- 5. the payment: QR code, status timeline, simulated callback -----------------------------

const paymentForm = document.getElementById("payment-form");
let attemptKey = null; // one Idempotency-Key per attempt: a retry after a lost answer reuses it
let reference = null;
let pollTimer = null;
let shownEvents = -1;
let pollGeneration = 0; // a poll started later wins; an older one stops when it sees it
let settledPolls = 0; // polls since the payment read settled

paymentForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  attemptKey = attemptKey || newKey();
  const body = {amount: form.amount.value.trim(), customer_details: {
    name: form.name.value.trim(), email: form.email.value.trim(), phone: form.phone.value.trim()}};
  if (/^\d+(\.\d{1,2})?$/.test(body.amount)) body.amount = Number(body.amount);
  const result = await postJson(form, body, {headers: {"Idempotency-Key": attemptKey}, withConsent: false});
  if (result && result.http >= 400 && result.http < 500) attemptKey = null; // refused: nothing was opened
  settle(form, result, (data) => {
    attemptKey = null;
    openPayment(data);
  }, "amount");
});

function openPayment(data) {
  reference = data.reference_id;
  document.getElementById("last-reference").textContent = reference;
  document.getElementById("last-reference-line").hidden = false;
  document.getElementById("reference").textContent = reference;
  document.getElementById("shown-amount").textContent = `₹${data.amount}`;
  const qr = document.getElementById("qr");
  if (data.upi_uri) {
    qr.src = "/demo/qr.svg?uri=" + encodeURIComponent(data.upi_uri);
    document.getElementById("upi-link").href = data.upi_uri;
  }
  qr.closest("figure").hidden = !data.upi_uri;
  paymentForm.hidden = true;
  document.getElementById("payment-view").hidden = false;
  document.getElementById("new-payment").hidden = true;
  for (const button of document.querySelectorAll("#simulate button")) button.disabled = false;
  document.getElementById("simulate")?.removeAttribute("hidden");
  document.getElementById("timeline").replaceChildren();
  shownEvents = -1;
  settledPolls = 0;
  showStatus("PENDING");
  document.getElementById("h-payment").focus();
  poll();
}

function showStatus(status) {
  const pill = document.getElementById("payment-status");
  if (pill.textContent === status) return;
  pill.textContent = status;
  pill.className = "status s-" + status.toLowerCase();
}

async function poll() {
  clearTimeout(pollTimer);
  const generation = ++pollGeneration;
  const polled = reference;
  try {
    // The status first, then the timeline: a timeline read after the status read includes
    // whatever settled it. Read in parallel, a timeline answered just before a callback landed
    // could be the last one shown beside a settled status.
    const status = await fetch(`${prefix}/payments/${encodeURIComponent(polled)}`).then((r) => r.json());
    const timeline = await fetch(`/demo/payments/${encodeURIComponent(polled)}/timeline`).then((r) => r.json());
    if (generation !== pollGeneration) return; // a newer poll (or payment) took over
    if (timeline.events) renderTimeline(timeline.events);
    const current = status.data && status.data.transaction_status && SETTLED.includes(status.data.transaction_status)
      ? status.data.transaction_status : (SETTLED.includes(timeline.status) ? timeline.status : "PENDING");
    showStatus(current);
    if (SETTLED.includes(current)) {
      if (settledPolls === 0) finished(current);
      // A status read can settle the payment before Decentro's callback arrives: keep the
      // timeline fresh until the callback shows, for a bounded while.
      const callbackShown = (timeline.events || []).some((e) => e.kind === "callback");
      if (callbackShown || ++settledPolls > CALLBACK_WAIT_POLLS) return;
    }
  } catch {
    if (generation !== pollGeneration) return;
  }
  pollTimer = setTimeout(poll, POLL_MS);
}

function renderTimeline(events) {
  if (events.length === shownEvents) return; // unchanged: aria-live announces only news
  shownEvents = events.length;
  const list = document.getElementById("timeline");
  list.replaceChildren(...events.map((e) => {
    const item = document.createElement("li");
    const time = document.createElement("time");
    time.dateTime = e.at;
    time.textContent = new Date(e.at).toLocaleTimeString();
    const pill = document.createElement("span");
    pill.className = "status s-" + e.outcome.toLowerCase().replace(/[^a-z]/g, "");
    pill.textContent = e.outcome;
    item.append(time, " ", e.label, " ", pill);
    return item;
  }));
}

function finished(status) {
  document.getElementById("simulate")?.setAttribute("hidden", "");
  if (status === "SUCCESS") {
    remember(`First payment of ${document.getElementById("shown-amount").textContent} received`);
    document.querySelector('#steps [data-step="payment"]').classList.add("done");
  } else {
    document.getElementById("new-payment").hidden = false; // the failed reference stays shown
  }
}

for (const button of document.querySelectorAll("#simulate button")) {
  button.addEventListener("click", async () => {
    const group = document.querySelectorAll("#simulate button");
    for (const b of group) b.disabled = true;
    const answer = await fetch("/demo/simulate-callback", {
      method: "POST", headers: {"Content-Type": "application/json"},
      body: JSON.stringify({reference_id: reference, status: button.dataset.status}),
    }).catch(() => null);
    if (!answer || !answer.ok) for (const b of group) b.disabled = false;
    poll();
  });
}

document.getElementById("new-payment").addEventListener("click", () => {
  clearTimeout(pollTimer);
  document.getElementById("payment-view").hidden = true;
  paymentForm.hidden = false;
  paymentForm.amount.focus();
});
