"""The OpenAPI schema lists every status an operation can answer, each error in the one shape
(core.api.ErrorSerializer): what the views declare, plus what any operation may answer from the
layers around it (authentication, permissions, input limits, throttling, the database)."""

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema

from core.serializers import ErrorSerializer

# status -> when; every operation can answer these
ALWAYS = {
    "400": "The request or its input was refused; see `errors`.",
    "401": "No credentials, or a token that is unknown, expired or revoked.",
    "403": "The caller may not do this.",
    "404": "Not found, or not visible to the caller.",
    "414": "The address is longer than the server takes.",
    "429": "Too many requests; retry after the time in Retry-After.",
    "503": "The database does not answer; retry after the time in Retry-After.",
}
WITH_BODY = {
    "413": "The request body is larger than this address takes.",
    "415": "The request body's media type is not one this operation reads.",
}


class AutoSchema(SpectacularAutoSchema):
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        errors = dict(ALWAYS)
        if self.method in ("POST", "PUT", "PATCH"):
            errors.update(WITH_BODY)
        for code, description in errors.items():
            if code in responses:
                continue
            if code == "414":  # answered by the HTTP server in front of the app, without a body
                responses[code] = {"description": description}
                continue
            response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
            response["description"] = description
            responses[code] = response
        return responses


# What the API refuses in any text: NUL characters (PostgreSQL stores none). Text that may not be
# blank must also hold a character other than white space, since text is trimmed on input.
NO_NUL = "^[^\\u0000]*$"
NOT_BLANK = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$"
_FIXED = ("enum", "format", "pattern")


def _text_rules(schema) -> None:
    if isinstance(schema, list):
        for item in schema:
            _text_rules(item)
        return
    if not isinstance(schema, dict):
        return
    if schema.get("type") == "string" and not any(key in schema for key in _FIXED):
        schema["pattern"] = NOT_BLANK if schema.get("minLength", 0) >= 1 else NO_NUL
    for key, value in schema.items():
        if key in ("properties",):
            for child in value.values():
                _text_rules(child)
        elif key in ("items", "additionalProperties", "allOf", "oneOf", "anyOf"):
            _text_rules(value)


def text_rules_hook(result, generator, request, public):
    """drf-spectacular post-processing: the rules above, on every text the API reads (request
    bodies, query and path parameters). Query parameters are never empty (core.middleware)."""
    for name, schema in result.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _text_rules(schema)
    for item in result.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") not in ("query", "path"):
                    continue
                if schema.get("type") == "string" and not any(key in schema for key in _FIXED):
                    schema.setdefault("minLength", 1)
                    schema["pattern"] = NO_NUL
    return result
