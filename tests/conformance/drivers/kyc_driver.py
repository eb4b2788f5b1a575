"""Drive ``decentro-in-kyc-python-sdk`` against the sandbox (runs in the SDK's own venv).

Of the SDK's eight operations only ``validate`` (``/kyc/public_registry/validate``) has an
endpoint the sandbox serves; the others (OCR, forensics, masking, classification) are not
emulated. Each answer is checked with the schema class the SDK itself maps to that HTTP
status (``_status_code_to_response``), i.e. exactly the check its deserializer runs with
``skip_deserialization=False``. The missing-consent request cannot be built by the SDK (its
request model requires ``consent``), so it goes through the SDK's own ``ApiClient.call_api``
with the same auth headers, and its answer through the SDK's own 400 deserializer.
"""

from __future__ import annotations

import json
from typing import Any

from driver_common import PURPOSE, Recorder, arguments, ref, run

import decentro_in_kyc_client
from decentro_in_kyc_client import ApiException, Decentro
from decentro_in_kyc_client.paths import PathValues
from decentro_in_kyc_client.paths.kyc_public_registry_validate import post as validate_post
from urllib3._collections import HTTPHeaderDict

import conformance_cases

VALIDATE_PATH = "/kyc/public_registry/validate"


def schema_checks(status: int, body: Any, configuration: Any) -> list[tuple[str, Any]]:
    response = validate_post._status_code_to_response.get(str(status))
    if response is None:
        return []  # Decentro's spec defines no model for this status
    schema = response.content["application/json"].schema
    return [(f"schema:{schema.__name__}", lambda: schema.from_openapi_data_oapg(body, _configuration=configuration))]


def call_validate(recorder: Recorder, client: Decentro, case: str, **fields: Any) -> None:
    configuration = client.kyc.api_client.configuration
    try:
        answer = client.kyc.validate(reference_id=ref(), consent_purpose=PURPOSE, **fields)
        status, body = answer.status, answer.body
    except ApiException as refused:
        status, body = refused.status, refused.body
    recorder.record(case, status, _plain(body), schema_checks(status, body, configuration))


def missing_consent(recorder: Recorder, client: Decentro) -> None:
    configuration = client.kyc.api_client.configuration
    body = {"reference_id": ref(), "document_type": "PAN", "id_number": "ABCDE1234F", "consent_purpose": PURPOSE}
    headers = HTTPHeaderDict({"Content-Type": "application/json", "Accept": "application/json"})
    response = client.kyc.api_client.call_api(resource_path=VALIDATE_PATH, method="POST", headers=headers,
                                              serialized_body=json.dumps(body).encode(), body=body,
                                              auth_settings=validate_post._auth)
    status = response.http_response.status
    answer = json.loads(response.http_response.data)

    def sdk_deserializer() -> None:  # the SDK's own 400 path, with validation on
        validate_post._status_code_to_response[str(status)].deserialize(response, configuration,
                                                                        skip_deserialization=False)

    checks = [(f"schema:{validate_post.Validate400ResponseSchema.__name__}", sdk_deserializer)] if status == 400 else []
    recorder.record("validate_missing_consent", status, answer, checks)


def _plain(body: Any) -> Any:
    return json.loads(json.dumps(body, default=str))


def main() -> None:
    args = arguments()
    recorder = Recorder("kyc", conformance_cases.KYC_CASES)
    client = Decentro(host=args.url, client_id=args.client_id, client_secret=args.client_secret,
                      module_secret=args.module_secret)
    wrong = Decentro(host=args.url, client_id=args.client_id, client_secret=args.client_secret,
                     module_secret="not-the-module-secret")
    recorder.exercised["validate"] = VALIDATE_PATH
    pan = {"document_type": "PAN", "consent": "Y"}
    steps = {
        "validate_pan": lambda: call_validate(recorder, client, "validate_pan", id_number="ABCDE1234F", **pan),
        "validate_pan_detailed": lambda: call_validate(recorder, client, "validate_pan_detailed", id_number="ABCDE1234F",
                                                       document_type="PAN_DETAILED", consent="Y"),
        "validate_pan_invalid": lambda: call_validate(recorder, client, "validate_pan_invalid", id_number="ABCDE0000F",
                                                      **pan),
        "validate_pan_no_record": lambda: call_validate(recorder, client, "validate_pan_no_record",
                                                        id_number="ABCDE0404F", **pan),
        "validate_missing_consent": lambda: missing_consent(recorder, client),
        "validate_short_consent_purpose": lambda: _short_purpose(recorder, client),
        "validate_unknown_document_type": lambda: call_validate(recorder, client, "validate_unknown_document_type",
                                                                id_number="ABCDE1234F", document_type="PASSPORTX",
                                                                consent="Y"),
        "validate_wrong_module_secret": lambda: call_validate(recorder, wrong, "validate_wrong_module_secret",
                                                              id_number="ABCDE1234F", **pan),
    }
    for case, step in steps.items():
        run(recorder, case, step)
    recorder.output(version=decentro_in_kyc_client.__version__, sdk_paths=[p.value for p in PathValues])


def _short_purpose(recorder: Recorder, client: Decentro) -> None:
    configuration = client.kyc.api_client.configuration
    try:
        answer = client.kyc.validate(reference_id=ref(), document_type="PAN", id_number="ABCDE1234F", consent="Y",
                                     consent_purpose="Too short")
        status, body = answer.status, answer.body
    except ApiException as refused:
        status, body = refused.status, refused.body
    recorder.record("validate_short_consent_purpose", status, _plain(body), schema_checks(status, body, configuration))


if __name__ == "__main__":
    main()
