"""Constructor checks of every attention module and of every class registered in mmattn.

Python's own errors for a constructor call name neither the module nor what it takes:
``SE(64, reduciton=16)`` raises ``TypeError: SE.__init__() got an unexpected keyword argument
'reduciton'``, and ``NonLocal(16, True)`` builds with ``reduction=True`` (a 1x reduction: bool
is an int) where mmcv's ``NonLocal2d(16, True)`` means ``sub_sample=True``. Each constructor
is wrapped once (:func:`check_constructor`: by :class:`~mmattn.models.BaseAttention` for its
subclasses, by the registry for every class registered in the ``mmattn`` scope), so the
checks hold however the class is built: directly, by ``build_attention``, by a config's
``plugins=`` / neck / head, or by mmengine's registry. Before the constructor runs it refuses,
with :class:`ArgumentError` (a ``TypeError``, as Python's own):

- an unknown keyword, naming the class, the argument, the closest valid one and every
  argument it takes;
- more positional arguments than the signature's (attention modules take ``in_channels``
  positionally and their other arguments by keyword);
- a bool given for a number (:func:`is_numeric` says which arguments are numbers):
  :class:`BoolForNumberError`, also a ``ValueError``.

A constructor called again for the same object (a ``super().__init__``) is not checked twice.
:func:`attention_being_built` names the outermost attention module under construction, for
the warnings of :func:`mmattn.models.utils.reduced_channels`.
"""
import contextvars
import difflib
import functools
import inspect
import typing
from typing import Dict, List, Optional, Tuple

# (id of the object, its class's name, whether it is an attention module) of every checked
# constructor running, outermost first
_BUILDING: contextvars.ContextVar = contextvars.ContextVar('mmattn_building', default=())
_OWNER = '__mmattn_checked__'


class ArgumentError(TypeError):
    """A constructor argument that is unknown, one too many, or a bool given for a number.

    A ``TypeError``, as Python raises for an unexpected keyword or an extra positional
    argument, so code that catches that keeps working.
    """


class BoolForNumberError(ArgumentError, ValueError):
    """A bool given for a number: an :class:`ArgumentError` (a ``TypeError``), and a
    ``ValueError`` as the modules' own checks of a number's value raise."""


class Parameters(typing.NamedTuple):
    """What a class's constructor accepts: every named parameter (its own and, through
    ``**kwargs``, its bases'), those it takes by position, and whether it accepts any
    keyword (a ``**kwargs`` that no base resolves)."""
    named: Dict[str, inspect.Parameter]
    positional: Tuple[str, ...]
    any_keyword: bool
    any_positional: bool


_PARAMETERS: Dict[type, Parameters] = {}


def _own_parameters(function) -> List[inspect.Parameter]:
    params = list(inspect.signature(function).parameters.values())
    return params[1:] if params and params[0].name == 'self' else params


def parameters(cls: type) -> Parameters:
    """The parameters of ``cls(...)``: its signature's (``__signature__`` where the class
    sets one), then, while a constructor passes ``**kwargs`` on, those of the next
    constructor in the method resolution order."""
    if cls in _PARAMETERS:
        return _PARAMETERS[cls]
    if inspect.unwrap(cls.__init__) is object.__init__:
        # no constructor of its own or of its bases (a hook): it takes nothing
        _PARAMETERS[cls] = Parameters({}, (), False, False)
        return _PARAMETERS[cls]
    top = list(inspect.signature(cls).parameters.values())
    named = {p.name: p for p in top if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    positional = tuple(p.name for p in top if p.kind in (p.POSITIONAL_ONLY,
                                                        p.POSITIONAL_OR_KEYWORD))
    any_positional = any(p.kind is p.VAR_POSITIONAL for p in top)
    open_keywords = any(p.kind is p.VAR_KEYWORD for p in top)
    if open_keywords:
        for base in cls.__mro__:
            init = vars(base).get('__init__')
            if init is None or base is object:
                continue
            try:
                own = _own_parameters(init)
            except (TypeError, ValueError):  # a C constructor without a signature
                break
            for p in own:
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    # reached through **kwargs: given by keyword only
                    named.setdefault(p.name, p.replace(kind=p.KEYWORD_ONLY))
            if not any(p.kind is p.VAR_KEYWORD for p in own):
                open_keywords = False
                break
    result = Parameters(named, positional, open_keywords, any_positional)
    _PARAMETERS[cls] = result
    return result


_NUMBER_NAMES = ('reduction', 'ratio', 'depth')


def _annotated_number(annotation) -> bool:
    if annotation in (int, float):
        return True
    return any(_annotated_number(a) for a in typing.get_args(annotation))


def is_numeric(param: inspect.Parameter) -> bool:
    """Whether the argument is a number (or numbers), for which a bool is refused: its
    default is an int or a float, its annotation says int or float, or its name says so
    (``*channels``, ``num_*``, ``*_size``/``*_sizes``, ``*reduction``, ``*ratio``)."""
    default = param.default
    if isinstance(default, bool):
        return False
    if isinstance(default, (int, float)):
        return True
    if param.annotation is not param.empty and _annotated_number(param.annotation):
        return True
    name = param.name
    return (name.endswith('channels') or name.startswith('num_') or name.endswith('_size')
            or name.endswith('_sizes') or name.endswith(_NUMBER_NAMES))


# up to this many arguments are listed with their defaults (a backbone's or a head's, with
# those of mmdet's or mmseg's class, are listed by name)
_WITH_DEFAULTS = 12


def _signature_text(params: Parameters) -> str:
    with_defaults = len(params.named) <= _WITH_DEFAULTS
    return ', '.join(
        p.name if p.default is p.empty or not with_defaults
        else f'{p.name}={value_text(p.default)}' for p in params.named.values())


def value_text(value) -> str:
    """A default as a config writes it: ``dict(type='ReLU')`` for a dict, else its repr."""
    if isinstance(value, dict):
        return 'dict(' + ', '.join(f'{k}={value_text(v)}' for k, v in value.items()) + ')'
    return repr(value)


def _ordinal(n: int) -> str:
    return {1: '1st', 2: '2nd', 3: '3rd'}.get(n, f'{n}th')


def check_arguments(cls: type, args: tuple, kwargs: dict, name: Optional[str] = None) -> None:
    """Refuse what ``cls(*args, **kwargs)`` must not take (see the module's docstring)."""
    name = name or cls.__name__
    params = parameters(cls)
    takes = (f'{name} takes: {_signature_text(params)}' if params.named
             else f'{name} takes no arguments')
    unknown = [k for k in kwargs if k not in params.named]
    if unknown and not params.any_keyword:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(key, list(params.named), n=1, cutoff=0.6)
            hints.append(f'{key!r}; did you mean {close[0]!r}?' if close else f'{key!r}.')
        what = 'unknown argument' if len(unknown) == 1 else 'unknown arguments'
        raise ArgumentError(f'{name}: {what} {" ".join(hints)} {takes}')
    if len(args) > len(params.positional) and not params.any_positional:
        n = len(params.positional)
        first = ', '.join(params.positional) or 'none'
        why = (": their order differs from library to library (mmcv's NonLocal2d(16, True) "
               "means sub_sample=True), configs pass them by name"
               if params.positional == ('in_channels', ) else '')
        raise ArgumentError(
            f'{name}: got {len(args)} positional arguments {args!r}, but takes {n} ({first}) '
            f'and the others by keyword{why}. {takes}')
    given = list(zip(params.positional, args)) + list(kwargs.items())
    for i, (key, value) in enumerate(given):
        param = params.named.get(key)
        if isinstance(value, bool) and param is not None and is_numeric(param):
            default = ('' if param.default is param.empty
                       else f' (default {value_text(param.default)})')
            where = f' (its {_ordinal(i + 1)} positional argument)' if i < len(args) else ''
            raise BoolForNumberError(
                f'{name}: {key}={value!r}{where} is a bool, but {key} is a number{default}; '
                f'a bool is refused for a number (True would mean 1). {takes}')


def check_constructor(cls: type, attention: bool = False) -> None:
    """Wrap ``cls.__init__`` so that every call is checked by :func:`check_arguments` (once
    per object); nothing to do if it already is. ``attention``: ``cls`` is an attention
    module (what :func:`attention_being_built` reports)."""
    init = cls.__init__
    if getattr(init, _OWNER, None) is not None and '__init__' not in vars(cls):
        return  # inherited from a checked class: that wrapper checks for type(self)
    if getattr(vars(cls).get('__init__'), _OWNER, None) is not None:
        return

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        building = _BUILDING.get()
        if any(entry[0] == id(self) for entry in building):
            return init(self, *args, **kwargs)  # a super().__init__: checked by the first call
        # a subclass that inherits this constructor is checked (and named) as itself
        target = type(self) if type(self).__init__ is __init__ else cls
        check_arguments(target, args, kwargs)
        token = _BUILDING.set(building + ((id(self), target.__name__, attention), ))
        try:
            init(self, *args, **kwargs)
        finally:
            _BUILDING.reset(token)

    setattr(__init__, _OWNER, cls)
    cls.__init__ = __init__


def attention_being_built() -> Optional[str]:
    """The class name of the outermost attention module whose constructor is running (SCSE,
    not the CSE it builds), or None."""
    for _, name, is_attention in _BUILDING.get():
        if is_attention:
            return name
    return None
