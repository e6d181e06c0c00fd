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
            if code not in responses:
                response = self._get_response_for_code(ErrorSerializer, code, direction=direction)
                response["description"] = description
                responses[code] = response
        return responses
