"""A stock SOAP client for smartcity-service: Python's zeep, built from the WSDL.

Reads {"wsdl": PATH, "url": URL, "calls": [{"client": "inst/class/member/sub",
"provider": "inst/class/member/sub", "operation": NAME, "request": {...},
"id": X-ROAD-ID}]} on stdin and writes one JSON answer per call on stdout: the
response as zeep read it ({"body": ...}) or the SOAP fault ({"fault": {"code",
"message"}}). Imports the WSDL refers to by URL are served from the WSDL's folder:
the tests run without a network.
"""

import datetime
import decimal
import json
import os
import sys

import zeep
import zeep.exceptions
import zeep.helpers
from zeep.transports import Transport

PRODUCER = "{http://tunduk-seccurity-infocom.x-road.fi/producer}InfocomServiceBinding"


class LocalSchemas(Transport):
    """Loads schemas by file name from the WSDL's folder, never from the network."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def load(self, url):
        path = os.path.join(self.folder, url.rsplit("/", 1)[-1])
        if not os.path.exists(path):
            raise RuntimeError("no local copy of " + url)
        with open(path, "rb") as f:
            return f.read()


def identifier(path, object_type, extra=None):
    instance, member_class, member_code, subsystem = path.split("/")
    value = {
        "objectType": object_type,
        "xRoadInstance": instance,
        "memberClass": member_class,
        "memberCode": member_code,
        "subsystemCode": subsystem,
    }
    value.update(extra or {})
    return value


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"bytes": len(value)}
    return value


def typed(value):
    """JSON has no tuples: `{"gYear": 2015}` is zeep's xsd:gYear value (2015, None)."""
    if isinstance(value, dict):
        if set(value) == {"gYear"}:
            return (value["gYear"], None)
        return {key: typed(item) for key, item in value.items()}
    return value


def main():
    job = json.load(sys.stdin)
    client = zeep.Client(job["wsdl"], transport=LocalSchemas(os.path.dirname(job["wsdl"])))
    service = client.create_service(PRODUCER, job["url"])
    answers = []
    for call in job["calls"]:
        headers = {
            "client": identifier(call["client"], "SUBSYSTEM"),
            "service": identifier(
                call["provider"],
                "SERVICE",
                {"serviceCode": call["operation"], "serviceVersion": "v1"},
            ),
            "userId": "KG21212198700012",
            "id": call["id"],
            "issue": "test",
            "protocolVersion": "4.0",
        }
        try:
            body = getattr(service, call["operation"])(
                request=typed(call["request"]), _soapheaders=headers
            )
            # With headers in the output message, zeep returns the body and the header.
            result = plain(zeep.helpers.serialize_object(body, dict))
            answers.append({"body": result["body"], "header": result["header"]})
        except zeep.exceptions.Fault as fault:
            answers.append({"fault": {"code": fault.code, "message": fault.message}})
    json.dump(answers, sys.stdout, ensure_ascii=False)


if __name__ == "__main__":
    main()
