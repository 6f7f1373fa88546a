"""Register every coupleface module and set the default scope (as mmpretrain does).

At the package top, not in ``utils`` (mmpretrain keeps it in ``utils``): it imports every
other package, and ``coupleface.utils`` is the layer that imports none of them
(docs/architecture.md §3).
"""
import datetime
import warnings

from mmengine import DefaultScope


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import all coupleface (and mmpretrain) modules into the registries.

    Args:
        init_default_scope: Whether to set the global default scope to
            ``coupleface``, so registries build from our node first and fall
            back to mmpretrain's and MMEngine's.
    """
    import mmpretrain.datasets  # noqa: F401
    import mmpretrain.engine  # noqa: F401
    import mmpretrain.evaluation  # noqa: F401
    import mmpretrain.models  # noqa: F401

    import coupleface.datasets  # noqa: F401
    import coupleface.engine  # noqa: F401
    import coupleface.evaluation  # noqa: F401
    import coupleface.models  # noqa: F401
    import coupleface.visualization  # noqa: F401

    if not init_default_scope:
        return
    current = DefaultScope.get_current_instance()
    if current is None:
        DefaultScope.get_instance('coupleface', scope_name='coupleface')
    elif current.scope_name != 'coupleface':
        warnings.warn(f'The current default scope "{current.scope_name}" is not '
                      '"coupleface"; register_all_modules will force it to '
                      '"coupleface".')
        name = f'coupleface-{datetime.datetime.now()}'
        DefaultScope.get_instance(name, scope_name='coupleface')
