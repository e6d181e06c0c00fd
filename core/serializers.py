from rest_framework import serializers


class ErrorSerializer(serializers.Serializer):
    """The one shape of every error the API answers."""

    detail = serializers.CharField(help_text="What went wrong, for a person to read.")
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text="Messages per input field (`a.b.0.c` for nested input; `__all__` for the "
        "input as a whole). Empty unless the input was refused.",
    )
