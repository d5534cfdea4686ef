"""The OpenAPI 3.1 document of ingest-api, generated from the schema registry's files.

One path per event type (`/v1/events/<type>`) whose request body is the type's JSON Schema (2020-12
is OpenAPI 3.1's dialect, so the catalog files are used as they are, minus `$schema`); Avro types
get a JSON Schema derived from the record (for `application/json`) and `application/avro`. The
upload path takes multipart/form-data. Every operation names the scope it needs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from eventfn._schemas import read_schema_file, schema_paths

from ._config import IngestConfig
from ._errors import REALM

OPENAPI_PATH = "/openapi.json"
PROBLEM = "application/problem+json"
_AVRO_PRIMITIVES: dict[str, dict[str, Any]] = {
    "null": {"type": "null"},
    "boolean": {"type": "boolean"},
    "int": {"type": "integer", "format": "int32"},
    "long": {"type": "integer", "format": "int64"},
    "float": {"type": "number"},
    "double": {"type": "number"},
    "string": {"type": "string"},
    "bytes": {"type": "string", "contentEncoding": "base64"},
}
_ERRORS = {
    "400": "Malformed request (bad JSON, bad Idempotency-Key, bad multipart)",
    "401": "Missing or invalid bearer token (see WWW-Authenticate)",
    "403": "The token lacks the scope of this operation",
    "404": "Unknown event type or upload prefix",
    "413": "The body is larger than the limit",
    "415": "Unsupported content type",
    "422": "The data violates the type's schema (`field` names where)",
    "503": "The broker or the object store is unavailable: retry (with the same Idempotency-Key)",
}


def build_document(schemas_dir: Path, config: IngestConfig) -> dict[str, Any]:
    """The whole OpenAPI 3.1 document."""
    components: dict[str, Any] = {"Problem": _problem_schema(), "Accepted": _accepted_schema()}
    paths: dict[str, Any] = {}
    for path in schema_paths(schemas_dir):
        file = read_schema_file(path)
        if file.kind == "json":
            schema = {k: v for k, v in file.document.items() if k != "$schema"}
            media = {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{file.event_type}"}}
            }
        else:
            schema = avro_to_json_schema(file.document)
            ref = {"$ref": f"#/components/schemas/{file.event_type}"}
            media = {
                "application/json": {"schema": ref},
                "application/avro": {
                    "schema": {"type": "string", "contentMediaType": "application/avro"}
                },
            }
        components[file.event_type] = schema
        paths[f"/v1/events/{file.event_type}"] = {
            "post": _event_operation(file.event_type, media, schema)
        }
    paths["/v1/uploads/{prefix}"] = {"post": _upload_operation(config)}
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "eventfn ingest API",
            "version": "1",
            "description": "Publishes events of the eventfn catalog to the broker, and uploads "
            f"files into the storage pipeline. Bodies up to {config.max_body} bytes.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": f"JWT ({', '.join(config.algorithms)}), realm {REALM}; "
                    "scopes in `scope` (space separated) or `scp`.",
                }
            },
        },
    }


def _event_operation(
    event_type: str, media: dict[str, Any], schema: dict[str, Any]
) -> dict[str, Any]:
    scope = f"events:write:{event_type}"
    return {
        "operationId": "publish_" + event_type.replace(".", "_").replace("-", "_"),
        "summary": f"Publish {event_type}",
        "description": str(schema.get("description", "")) + f" Needs the scope `{scope}`.",
        "tags": ["events"],
        "security": [{"bearer": [scope]}],
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "Retries with the same key publish the same event id.",
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
        ],
        "requestBody": {"required": True, "content": media},
        "responses": {
            "202": {
                "description": "Published to the broker",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Accepted"}}
                },
            },
            **_error_responses(),
        },
    }


def _upload_operation(config: IngestConfig) -> dict[str, Any]:
    return {
        "operationId": "upload_file",
        "summary": "Upload a file into the storage pipeline",
        "description": "Stores the file as `<prefix>/<file name>`; needs `uploads:write:<prefix>`.",
        "tags": ["uploads"],
        "security": [{"bearer": [f"uploads:write:{p}" for p in config.upload_prefixes]}],
        "parameters": [
            {
                "name": "prefix",
                "in": "path",
                "required": True,
                "description": "Where the file goes (a storage pipeline input prefix).",
                "schema": {"type": "string", "enum": list(config.upload_prefixes)},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "file": {
                                "type": "string",
                                "contentMediaType": "application/octet-stream",
                            }
                        },
                        "required": ["file"],
                    }
                }
            },
        },
        "responses": {
            "201": {
                "description": "Stored",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "bucket": {"type": "string"},
                                "key": {"type": "string"},
                                "size": {"type": "integer"},
                                "content_type": {"type": "string"},
                            },
                            "required": ["bucket", "key", "size"],
                        }
                    }
                },
            },
            **_error_responses(),
        },
    }


def _error_responses() -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Problem"}
    return {
        code: {"description": text, "content": {PROBLEM: {"schema": ref}}}
        for code, text in _ERRORS.items()
    }


def _problem_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "RFC 9457 problem details",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "field": {"type": "string"},
            "retryable": {"type": "boolean"},
            "trace_id": {"type": "string"},
        },
        "required": ["type", "title", "status"],
    }


def _accepted_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "The CloudEvent id"},
            "type": {"type": "string", "description": "The CloudEvent type"},
        },
        "required": ["id", "type"],
    }


def avro_to_json_schema(node: Any) -> dict[str, Any]:
    """A JSON Schema for the JSON form of an Avro schema (records, arrays, maps, unions, enums)."""
    if isinstance(node, str):
        return dict(_AVRO_PRIMITIVES.get(node, {}))
    if isinstance(node, list):
        return {"anyOf": [avro_to_json_schema(branch) for branch in node]}
    if node.get("logicalType") in ("timestamp-millis", "timestamp-micros"):
        return {"type": "integer", "description": f"{node['logicalType']} since the Unix epoch"}
    complex_type = _AVRO_COMPLEX.get(node.get("type"))
    return complex_type(node) if complex_type else avro_to_json_schema(node.get("type"))


def _record(node: dict[str, Any]) -> dict[str, Any]:
    fields = node.get("fields", [])
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {f["name"]: _field_schema(f) for f in fields},
        "required": [f["name"] for f in fields if "default" not in f],
    }
    if node.get("doc"):
        schema["description"] = node["doc"]
    return schema


_AVRO_COMPLEX: dict[Any, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "record": _record,
    "array": lambda node: {"type": "array", "items": avro_to_json_schema(node.get("items"))},
    "map": lambda node: {
        "type": "object",
        "additionalProperties": avro_to_json_schema(node.get("values")),
    },
    "enum": lambda node: {"type": "string", "enum": list(node.get("symbols", []))},
}


def _field_schema(field: dict[str, Any]) -> dict[str, Any]:
    schema = avro_to_json_schema(field.get("type"))
    if field.get("doc"):
        schema["description"] = field["doc"]
    return schema
