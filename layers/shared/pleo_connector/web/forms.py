"""HTML forms from pydantic models, and submitted forms back into those models.

An adapter declares its connection settings as a pydantic model; the settings page renders it
with `form_fields` and reads it back with `parse_form`. Secrets (`SecretStr`) become password
inputs that are never filled in: left empty, the stored value is kept. Errors are per field and
never repeat what was typed.
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal
from urllib.parse import parse_qs

import annotated_types
from pydantic import AnyUrl, BaseModel, SecretStr, ValidationError

from pleo_connector.errors import ConnectorError
from pleo_connector.installation_config import MAX_TAG_GROUPS, SyncChoices

if typing.TYPE_CHECKING:
    from pydantic.fields import FieldInfo

FormValues = Mapping[str, str | Sequence[str]]

MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 200
MAX_VALUE_CHARS = 4096
_TRUE_VALUES = frozenset({"on", "true", "1", "yes"})
FORM_ERROR_KEY = "__form__"


class MalformedFormError(ConnectorError, ValueError):
    """The body is not a form this app could have sent (a 400)."""

    http_status: ClassVar[int] = 400
    user_message = "The form could not be read."


class FormError(ConnectorError, ValueError):
    """The form does not validate; `errors` maps each field name to a message for the user."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("the form has errors in: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


@dataclass(frozen=True, slots=True)
class FormField:
    """One input, ready for the template: everything is already a string."""

    name: str
    label: str
    input_type: str
    required: bool = False
    value: str | None = None
    checked: bool = False
    options: tuple[tuple[str, str], ...] = ()
    help: str | None = None
    attributes: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    @property
    def id(self) -> str:
        return f"field-{self.name}"

    @property
    def described_by(self) -> str | None:
        """The ids of the help and error texts, for screen readers."""
        ids = [
            f"{self.id}-{part}"
            for part, text in (("help", self.help), ("error", self.error))
            if text
        ]
        return " ".join(ids) or None


@dataclass(frozen=True, slots=True)
class _Kind:
    input_type: str
    optional: bool
    options: tuple[tuple[str, str], ...] = ()
    python_type: Any = None
    attributes: tuple[tuple[str, str], ...] = field(default=())


def parse_form_body(body: str | None) -> dict[str, list[str]]:
    """Parse an `application/x-www-form-urlencoded` body; MalformedFormError when it cannot be."""
    if body is None or body == "":
        return {}
    if len(body) > MAX_FORM_BYTES:
        raise MalformedFormError("the form is too large")
    try:
        return parse_qs(
            body,
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FORM_FIELDS,
        )
    except ValueError:
        raise MalformedFormError("the form could not be read") from None


def single_value(form: FormValues, name: str) -> str | None:
    """The one value of `name`; MalformedFormError when it was sent more than once."""
    value = form.get(name)
    if value is None or isinstance(value, str):
        return value
    values = list(value)
    if len(values) > 1:
        raise MalformedFormError(f"the field {name} was sent more than once")
    return values[0] if values else None


def all_values(form: FormValues, name: str) -> list[str]:
    value = form.get(name)
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0], True
        raise TypeError("a form field can only hold one type (or None)")
    return annotation, False


def _kind(info: FieldInfo) -> _Kind:
    annotation, optional = _unwrap_optional(info.annotation)
    if typing.get_origin(annotation) is Literal:
        options = tuple((str(v), str(v)) for v in typing.get_args(annotation))
        return _Kind("select", optional, options, annotation)
    if isinstance(annotation, type):
        if issubclass(annotation, bool):
            return _Kind("checkbox", optional, python_type=bool)
        if issubclass(annotation, enum.Enum):
            options = tuple((str(m.value), str(m.value)) for m in annotation)
            return _Kind("select", optional, options, annotation)
        if issubclass(annotation, int):
            return _Kind("number", optional, python_type=int, attributes=(("step", "1"),))
        if issubclass(annotation, float):
            return _Kind("number", optional, python_type=float, attributes=(("step", "any"),))
        if issubclass(annotation, SecretStr):
            return _Kind("password", optional, python_type=SecretStr)
        if issubclass(annotation, AnyUrl):
            return _Kind("url", optional, python_type=annotation)
        if issubclass(annotation, str):
            return _Kind("text", optional, python_type=str)
    raise TypeError(f"no form input for the type {annotation!r}")


def _constraint_attributes(info: FieldInfo, kind: _Kind) -> list[tuple[str, str]]:
    """HTML constraints the browser can check early; the server validates again regardless."""
    attributes: list[tuple[str, str]] = []
    for item in info.metadata:
        if isinstance(item, annotated_types.MinLen) and kind.input_type != "checkbox":
            attributes.append(("minlength", str(item.min_length)))
        elif isinstance(item, annotated_types.MaxLen) and kind.input_type != "checkbox":
            attributes.append(("maxlength", str(item.max_length)))
        elif kind.input_type == "number":
            whole = kind.python_type is int
            if isinstance(item, annotated_types.Ge):
                attributes.append(("min", str(item.ge)))
            elif isinstance(item, annotated_types.Le):
                attributes.append(("max", str(item.le)))
            elif isinstance(item, annotated_types.Gt) and whole:
                attributes.append(("min", str(int(str(item.gt)) + 1)))
            elif isinstance(item, annotated_types.Lt) and whole:
                attributes.append(("max", str(int(str(item.lt)) - 1)))
    return attributes


def _label(name: str, info: FieldInfo) -> str:
    return info.title or name.replace("_", " ").capitalize()


def _display(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "" if value is None else str(value)


def _has_secret(value: Any) -> bool:
    return isinstance(value, SecretStr) and value.get_secret_value() != ""


def form_fields(
    model: type[BaseModel],
    values: BaseModel | FormValues | None = None,
    errors: Mapping[str, str] | None = None,
    *,
    prefix: str = "",
) -> list[FormField]:
    """The inputs of `model`, filled from a saved model or from a submitted form (on errors).

    Password inputs are never filled. When a saved model holds a secret, its input is optional:
    left empty, `parse_form(..., current=saved)` keeps the stored value.
    """
    errors = errors or {}
    fields: list[FormField] = []
    for name, info in model.model_fields.items():
        kind = _kind(info)
        required = info.is_required() and not kind.optional
        help_text = info.description
        value: str | None = None
        checked = False
        if isinstance(values, BaseModel):
            current = getattr(values, name, None)
            if kind.input_type == "password":
                if _has_secret(current):
                    required = False
                    help_text = " ".join(
                        filter(None, [help_text, "A value is stored; leave empty to keep it."])
                    )
            elif kind.input_type == "checkbox":
                checked = bool(current)
            else:
                value = _display(current)
        elif values is not None:
            submitted = all_values(values, prefix + name)
            if kind.input_type == "checkbox":
                checked = bool(submitted) and submitted[0].strip().lower() in _TRUE_VALUES
            elif kind.input_type != "password":
                value = submitted[0][:MAX_VALUE_CHARS] if submitted else None
        elif kind.input_type == "checkbox":
            checked = info.default is True
        elif kind.input_type != "password" and not info.is_required():
            value = _display(info.default) if info.default is not None else None
        attributes = list(kind.attributes) + _constraint_attributes(info, kind)
        if kind.input_type == "password":
            attributes.append(("autocomplete", "off"))
        fields.append(
            FormField(
                name=prefix + name,
                label=_label(name, info),
                input_type=kind.input_type,
                required=required and kind.input_type != "checkbox",
                value=value,
                checked=checked,
                options=kind.options,
                help=help_text,
                attributes=tuple(attributes),
                error=errors.get(name),
            )
        )
    return fields


def parse_form[ModelT: BaseModel](
    model: type[ModelT],
    form: FormValues,
    *,
    prefix: str = "",
    current: BaseModel | None = None,
) -> ModelT:
    """Read `model` from a submitted form. Raises FormError with a message per field.

    Fields not in `model` (the CSRF token, other sections) are ignored. An empty secret keeps the
    one in `current`. Messages come from the validation rules, never from the typed value.
    """
    data: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name, info in model.model_fields.items():
        kind = _kind(info)
        submitted = all_values(form, prefix + name)
        if len(submitted) > 1:
            errors[name] = "Send one value only."
            continue
        raw = submitted[0] if submitted else None
        if raw is not None and len(raw) > MAX_VALUE_CHARS:
            errors[name] = f"Use at most {MAX_VALUE_CHARS} characters."
            continue
        if kind.input_type == "checkbox":
            data[name] = raw is not None and raw.strip().lower() in _TRUE_VALUES
            continue
        text = raw.strip() if raw is not None else ""
        if text:
            data[name] = text
        elif (
            kind.input_type == "password"
            and current is not None
            and _has_secret(getattr(current, name, None))
        ):
            data[name] = getattr(current, name)
        elif kind.optional and info.is_required():
            data[name] = None
        elif info.is_required():
            errors[name] = "This field is required."
    try:
        parsed = model.model_validate(data, by_name=True)
    except ValidationError as error:
        for item in error.errors(include_input=False, include_url=False):
            location = item["loc"]
            key = str(location[0]) if location else FORM_ERROR_KEY
            errors.setdefault(key, _sentence(item["msg"]))
        raise FormError(errors) from None
    if errors:
        raise FormError(errors)
    return parsed


def _sentence(message: str) -> str:
    message = message.strip()
    return message if message.endswith(".") else message + "."


SYNC_PREFIX = "sync_"


def parse_sync_choices(form: FormValues, available_tag_groups: Collection[str]) -> SyncChoices:
    """Read the sync choices; only tag groups that the accounting system offers, at most five."""
    picked = list(dict.fromkeys(v.strip() for v in all_values(form, f"{SYNC_PREFIX}tag_groups")))
    errors: dict[str, str] = {}
    if any(code not in available_tag_groups for code in picked):
        errors["tag_groups"] = "Choose tag groups from the list."
    elif len(picked) > MAX_TAG_GROUPS:
        errors["tag_groups"] = f"Choose at most {MAX_TAG_GROUPS} tag groups."
    if errors:
        raise FormError(errors)

    def ticked(name: str) -> bool:
        values = all_values(form, f"{SYNC_PREFIX}{name}")
        return bool(values) and values[0].strip().lower() in _TRUE_VALUES

    return SyncChoices(
        tag_groups=picked,
        tax_codes=ticked("tax_codes"),
        vendors=ticked("vendors"),
        accounts=ticked("accounts"),
    )
