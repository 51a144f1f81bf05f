"""Machine- and human-readable descriptions of the events, from the registry.

``asyncapi()`` (served at ``/api/asyncapi.json``) and ``events_markdown()``
(``docs/events.md``, written by ``manage.py events_doc``) are both built from
the contract registry (``contracts.CONTRACTS``) and ``contracts.Envelope``,
the same registry the event log and the subscribers validate with, and from
the registered subscriptions, so the documents cannot drift from what is
accepted and delivered.
"""

import json
from typing import Any

from django.conf import settings

from . import contracts, topology
from .subscriptions import subscriptions

ASYNCAPI_VERSION = "2.6.0"
AMQP_BINDING_VERSION = "0.2.0"


def _message_name(type_: str, version: int) -> str:
    return f"{type_}.v{version}"


def data_schema(type_: str, version: int) -> dict[str, Any]:
    """The JSON Schema of ``data`` for one type and version."""
    return contracts.EVENT_TYPES[(type_, version)].model_json_schema(mode="validation")


def envelope_schema(type_: str, version: int) -> dict[str, Any]:
    """The JSON Schema of a whole CloudEvent of this type and version."""
    base = contracts.Envelope.model_json_schema(mode="validation")
    properties = dict(base["properties"])
    properties["type"] = {"const": type_, "description": "The event type."}
    properties["dataschemaversion"] = {
        "anyOf": [{"const": version}, {"const": str(version)}],
        "default": 1,
        "description": "Schema version of data; 1 when absent.",
    }
    properties["data"] = data_schema(type_, version)
    properties["id"]["description"] = "Unique per source; a UUID is usual."
    properties["source"]["description"] = (
        "URI-reference of the producing service, e.g. /hr-import."
    )
    properties["time"]["description"] = "RFC 3339: when it happened."
    return {
        "title": f"{type_} v{version}",
        "type": "object",
        "required": sorted(base.get("required", [])),
        "properties": properties,
        "additionalProperties": True,
    }


def _types() -> dict[str, list[int]]:
    by_type: dict[str, list[int]] = {}
    for type_, version in sorted(contracts.EVENT_TYPES):
        by_type.setdefault(type_, []).append(version)
    return by_type


def _exchange_binding(name: str) -> dict[str, Any]:
    return {
        "amqp": {
            "is": "routingKey",
            "exchange": {
                "name": name,
                "type": "topic",
                "durable": True,
                "autoDelete": False,
                "vhost": "/",
            },
            "bindingVersion": AMQP_BINDING_VERSION,
        }
    }


def _receivers(type_: str) -> list[str]:
    return [s.name for s in subscriptions() if s.wants(type_)]


def subscribers_description() -> list[dict[str, Any]]:
    """The in-portal subscribers: what each receives and how it is delivered."""
    return [
        {
            "name": s.name,
            "description": s.description,
            "patterns": list(s.patterns),
            "task": s.task,
            "queue": s.queue,
            "deadLetterQueue": s.dead_letter_queue,
            "deliveryLimit": s.max_deliveries,
            "retryDelaysSeconds": list(s.delays),
            "eventsPerMessage": s.max_events_per_message,
            "spreadOverMessages": s.min_messages,
        }
        for s in subscriptions()
    ]


def asyncapi() -> dict[str, Any]:
    """The AsyncAPI 2.6 document: per event type, a channel on
    ``portal.events`` (publish: other services send) and one on
    ``portal.broadcast`` (subscribe: other services receive every event the
    portal logs); ``x-portal-subscribers`` lists the subscribers inside."""
    channels: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for type_, versions in _types().items():
        refs = []
        for version in versions:
            name = _message_name(type_, version)
            schemas[name] = envelope_schema(type_, version)
            messages[name] = {
                "name": name,
                "title": f"{type_} (data v{version})",
                "contentType": contracts.CONTENT_TYPE,
                "payload": {"$ref": f"#/components/schemas/{name}"},
                "bindings": {
                    "amqp": {
                        "contentEncoding": "utf-8",
                        "messageType": type_,
                        "bindingVersion": AMQP_BINDING_VERSION,
                    }
                },
            }
            refs.append({"$ref": f"#/components/messages/{name}"})
        message = refs[0] if len(refs) == 1 else {"oneOf": refs}
        owner = contracts.CONTRACTS[(type_, versions[-1])].owner
        receivers = ", ".join(_receivers(type_)) or "none"
        channels[f"{topology.EVENTS_EXCHANGE}/{type_}"] = {
            "description": f"Routing key `{type_}` on the topic exchange "
            f"`{topology.EVENTS_EXCHANGE}`. Owned by the portal's {owner}; "
            f"received in the portal by: {receivers}.",
            "bindings": _exchange_binding(topology.EVENTS_EXCHANGE),
            "publish": {
                "operationId": "publish_" + type_.replace(".", "_"),
                "summary": f"Other services publish `{type_}` events to the portal.",
                "bindings": {
                    "amqp": {
                        "deliveryMode": 2,
                        "mandatory": True,
                        "bindingVersion": AMQP_BINDING_VERSION,
                    }
                },
                "message": message,
            },
        }
        channels[f"{topology.BROADCAST_EXCHANGE}/{type_}"] = {
            "description": f"Routing key `{type_}` on the topic exchange "
            f"`{topology.BROADCAST_EXCHANGE}`: every `{type_}` event the "
            "portal logs, its own and other services', once per publish. Bind a "
            "queue of your own with the type patterns you want (`employee.*`, "
            "`#`) and dedupe on (`source`, `id`).",
            "bindings": _exchange_binding(topology.BROADCAST_EXCHANGE),
            "subscribe": {
                "operationId": "receive_" + type_.replace(".", "_"),
                "summary": f"Receive every `{type_}` event the portal logs.",
                "bindings": {
                    "amqp": {
                        "deliveryMode": 2,
                        "ack": True,
                        "bindingVersion": AMQP_BINDING_VERSION,
                    }
                },
                "message": message,
            },
        }
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:portal:events",
        "info": {
            "title": "Portal events",
            "version": "1",
            "description": (
                "CloudEvents 1.0 (JSON, structured mode). Other services publish "
                f"to the durable topic exchange `{topology.EVENTS_EXCHANGE}` with "
                "the event type as routing key: persistent messages, publisher "
                "confirms, `message_id` = event id, `app_id` = source. The same "
                "events may be POSTed to `/api/events/` with a service token. "
                "Every event the portal accepts is logged once per (source, id) "
                "and routed to each subscriber inside the portal that wants it "
                f"and to `{topology.BROADCAST_EXCHANGE}`, in the same shape, for "
                "services outside. Invalid events go to the dead-letter store, "
                f"never retried. Bodies above {settings.MESSAGE_MAX_BYTES} bytes "
                "are refused. Every version of a type listed here is accepted; "
                "the broadcast carries each event in the version it was sent "
                "in, while subscribers inside the portal receive older "
                "versions upcast to the newest where the owning app can "
                "(see x-portal-upcasts)."
            ),
        },
        "defaultContentType": contracts.CONTENT_TYPE,
        "servers": {
            "rabbitmq": {
                "url": "{host}:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "variables": {"host": {"default": "localhost"}},
            }
        },
        "channels": channels,
        "components": {"messages": messages, "schemas": schemas},
        "x-portal-subscribers": subscribers_description(),
        "x-portal-upcasts": [
            {"type": type_, "from": version, "to": version + 1}
            for type_, version in sorted(contracts.UPCASTERS)
        ],
    }


# --- docs/events.md ------------------------------------------------------------

_SAMPLES: dict[str, Any] = {
    "employee_id": 42,
    "from_employee_id": 42,
    "to_employee_id": 7,
    "team_id": 3,
    "department_id": 5,
    "from_department_id": 5,
    "to_department_id": 8,
    "full_name": "Anna Petrova",
    "from_name": "Anna Petrova",
    "to_name": "Ivan Ivanov",
    "position": "Backend Engineer",
    "old_position": "Engineer",
    "new_position": "Lead Engineer",
    "department": "Platform",
    "team": "Core",
    "old_name": "Finance",
    "new_name": "Finance & Accounting",
    "message": "Thanks for the review!",
}


def _sample(name: str, schema: dict[str, Any]) -> Any:
    if name in _SAMPLES:
        return _SAMPLES[name]
    if "enum" in schema or "const" in schema:
        return schema.get("enum", [schema.get("const")])[0]
    if schema.get("type") == "array":
        return [_sample(name, schema.get("items", {}))]
    kinds = {s.get("type") for s in schema.get("anyOf", [schema])}
    return 1 if "integer" in kinds else "text"


def example_event(type_: str, version: int) -> dict[str, Any]:
    """A valid example event (checked against the registry by the tests)."""
    schema = data_schema(type_, version)
    return {
        "specversion": contracts.SPECVERSION,
        "id": "0b6a3c1e-7f0e-4d5c-9a51-3f1b2c4d5e6f",
        "source": "/hr-import",
        "type": type_,
        "time": "2026-01-15T09:30:00Z",
        "datacontenttype": contracts.DATA_CONTENT_TYPE,
        "dataschemaversion": version,
        "data": {
            name: _sample(name, prop) for name, prop in schema["properties"].items()
        },
    }


def _type_text(schema: dict[str, Any]) -> str:
    options = schema.get("anyOf", [schema])
    names = [str(o.get("type", "any")) for o in options]
    return " or ".join("null" if n == "null" else n for n in names)


def _rules(schema: dict[str, Any]) -> str:
    rules = []
    for option in schema.get("anyOf", [schema]):
        if "minLength" in option:
            rules.append(f"{option['minLength']}–{option.get('maxLength', '')} chars")
    return ", ".join(rules)


def events_markdown() -> str:
    """``docs/events.md``: the contract of every event type, for people."""
    lines = [
        "# Events",
        "",
        "<!-- Generated from the contract registry (each app's contracts.py) "
        "and the subscriptions by `manage.py events_doc`; do not edit. -->",
        "",
        "Every event is a [CloudEvents 1.0](https://github.com/cloudevents/spec) "
        f"event in JSON structured mode (`{contracts.CONTENT_TYPE}`). The "
        "machine-readable description (AsyncAPI "
        f"{ASYNCAPI_VERSION}) is served at `/api/asyncapi.json`.",
        "",
        "## Publishing",
        "",
        f"- **AMQP**: durable topic exchange `{topology.EVENTS_EXCHANGE}`, "
        "routing key = the event `type`, body = the event as JSON, persistent "
        "(`delivery_mode` 2), `message_id` = event `id`, `app_id` = `source`, "
        f"`content_type` `{contracts.CONTENT_TYPE}`. Use publisher confirms and "
        "`mandatory`. Examples: `examples/publish_pika.py`, "
        "`examples/publish_aio_pika.py`.",
        "- **HTTP**: `POST /api/events/` with `Authorization: Token <service "
        "token>` (from `manage.py create_service_token NAME --source-prefix "
        "/your-service`), body = the event as JSON. `202` once logged, `400` "
        "with field errors, `401`/`403` without a valid token or for a source "
        "or type the token may not use.",
        "",
        "Sources under `/portal` are the portal's own and are refused from "
        "other services. Each (`source`, `id`) is logged once and applied by "
        "each subscriber at most once, so publishing again after a lost "
        "confirm or a timeout is safe. An event that can never be applied "
        "(invalid, unknown type or version, not JSON, wrong content type, "
        "bigger than `MESSAGE_MAX_BYTES`, 256 KiB by default) goes to the "
        "dead-letter store with its reason and is never retried.",
        "",
        "## Subscribing",
        "",
        f"Every event the portal logs, its own and other services', is "
        f"published once to the durable topic exchange "
        f"`{topology.BROADCAST_EXCHANGE}`: routing key = the event `type`, the "
        "same body and properties as above, persistent. Bind a durable queue "
        "of your own with the type patterns you want (`employee.*`, `#`), ack "
        "after your own commit and dedupe on (`source`, `id`): delivery is at "
        "least once. Example: `examples/consume_pika.py`.",
        "",
        "Inside the portal, these subscribers receive events (each on its own "
        "quorum queue, several events per task message):",
        "",
        "| subscriber | types | task | queue | retries (s) | delivery limit |",
        "|---|---|---|---|---|---|",
        *[
            f"| `{s['name']}` | {', '.join(f'`{p}`' for p in s['patterns'])} | "
            f"`{s['task']}` | `{s['queue']}` | "
            f"{', '.join(f'{d:g}' for d in s['retryDelaysSeconds'])} | "
            f"{s['deliveryLimit']} |"
            # By name: the same table whatever order the apps registered in.
            for s in sorted(subscribers_description(), key=lambda s: s["name"])
        ],
        "",
        "## Versions and upcasting",
        "",
        "A type's `data` changes only by a new version; every version listed "
        "below is accepted on `portal.events` and `POST /api/events/` (say "
        "which with `dataschemaversion`; 1 when absent). The portal's own "
        "services send the newest. The event log keeps every event as its "
        "producer sent it, and `portal.broadcast` publishes it so: a service "
        "outside sees the version that was sent, old or new.",
        "",
        "Inside the portal, events are **upcast on delivery to each "
        "subscriber**: before a subscriber's task sees its batch, an event of "
        "an older version is turned into the newest version its type's "
        "upcasters reach, so every subscriber (the feed and any other) "
        "receives the newest version wherever the portal can make it. The "
        "app that owns a type registers its upcasters; they look up what "
        "the old version did not carry (the registrar finds a department's "
        "id by its current name, a team's department by the team's id, a "
        "person's department by their id). Where a look-up finds nothing "
        "(a name no department has any more), the event is delivered in its "
        "own version, valid as it is: subscribers still accept every version "
        "listed.",
        "",
        "| type | versions | upcast |",
        "|---|---|---|",
        *[
            f"| `{type_}` | {', '.join(str(v) for v in versions)} | "
            + (
                ", ".join(
                    f"v{v} → v{v + 1}"
                    for v in versions
                    if (type_, v) in contracts.UPCASTERS
                )
                or "—"
            )
            + " |"
            for type_, versions in _types().items()
        ],
        "",
        "## Envelope",
        "",
        "| attribute | type | required | notes |",
        "|---|---|---|---|",
    ]
    base = contracts.Envelope.model_json_schema(mode="validation")
    notes = {
        "specversion": '`"1.0"`',
        "id": "unique per `source`; a UUID is usual",
        "source": "URI-reference naming the producing service",
        "type": "one of the types below (also the routing key)",
        "time": "RFC 3339 timestamp of when it happened (with offset)",
        "datacontenttype": '`"application/json"`',
        "dataschemaversion": "schema version of `data`; 1 when absent",
        "dataschema": "alternative to `dataschemaversion`, ending in `v<N>`",
        "traceparent": "W3C trace context, carried through",
        "data": "object, per type",
    }
    required = set(base.get("required", []))
    for name, prop in base["properties"].items():
        lines.append(
            f"| `{name}` | {_type_text(prop)} | "
            f"{'yes' if name in required else 'no'} | {notes.get(name, '')} |"
        )
    lines += [
        "",
        "Extension attributes (such as `correlationid`) are kept: names of 1-20 "
        "lower-case letters or digits, values strings (at most 2048 "
        "characters), 32-bit integers or booleans. `time` must lie between "
        "`EVENT_TIME_EARLIEST` (2000-01-01 by default) and "
        "`EVENT_TIME_MAX_FUTURE_SECONDS` (300) from now, with an offset of at "
        "most ±14:00; ids fit 64 bits; strings hold no U+0000 or unpaired "
        "surrogates.",
        "",
        "## Types",
        "",
        "| type | version | owner | data |",
        "|---|---|---|---|",
    ]
    for (type_, version), contract in sorted(contracts.CONTRACTS.items()):
        fields = ", ".join(f"`{f}`" for f in contract.data.model_fields)
        lines.append(f"| `{type_}` | {version} | {contract.owner} | {fields} |")
    for (type_, version), _model in sorted(contracts.EVENT_TYPES.items()):
        schema = data_schema(type_, version)
        required = set(schema.get("required", []))
        lines += [
            "",
            f"### `{type_}` (version {version})",
            "",
            f"{contracts.CONTRACTS[(type_, version)].description} "
            f"Routing key `{type_}`; received in the portal by: "
            f"{', '.join(_receivers(type_)) or 'none'}.",
            "",
            "| field | type | required | rules |",
            "|---|---|---|---|",
        ]
        for name, prop in schema["properties"].items():
            lines.append(
                f"| `{name}` | {_type_text(prop)} | "
                f"{'yes' if name in required else 'no'} | {_rules(prop)} |"
            )
        lines += [
            "",
            "```json",
            json.dumps(example_event(type_, version), indent=2, ensure_ascii=False),
            "```",
        ]
    return "\n".join(lines) + "\n"
