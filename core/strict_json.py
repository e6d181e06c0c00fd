"""JSON input is taken at its word: a number where the schema says text, text where it says a
number or a boolean, is refused (400) rather than converted. DRF converts by design, because a
form sends everything as text; form and multipart input keep that leniency.

Applied once to DRF's own field classes (CoreConfig.ready), so every serializer of the API,
hand-written or generated from a model, follows the schema it publishes.
"""

from django.http import QueryDict
from rest_framework import fields

# field class -> the JSON types it takes
_JSON_TYPES = {
    fields.CharField: (str,),
    fields.IntegerField: (int,),
    fields.FloatField: (int, float),
    fields.BooleanField: (bool,),
}


def _from_json(field) -> bool:
    initial = getattr(field.root, "initial_data", None)
    return initial is not None and not isinstance(initial, QueryDict)


def _strict(field_class, types):
    lenient = field_class.to_internal_value

    def to_internal_value(self, data):
        wrong = not isinstance(data, types) or (bool not in types and isinstance(data, bool))
        if wrong and _from_json(self):
            self.fail("invalid")
        return lenient(self, data)

    to_internal_value.lenient = lenient
    field_class.to_internal_value = to_internal_value


def strict_json_apply() -> None:
    for field_class, types in _JSON_TYPES.items():
        if not hasattr(field_class.to_internal_value, "lenient"):
            _strict(field_class, types)
