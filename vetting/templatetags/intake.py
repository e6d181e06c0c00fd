from django import template

register = template.Library()


@register.filter
def field(form, name: str):
    return form[name]
