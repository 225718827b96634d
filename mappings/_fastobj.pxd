# cython: language_level=3
"""Building frozen, slotted dataclass instances from the accelerators without calling __init__.

A ``frozen=True, slots=True`` dataclass keeps each field in a slot (a ``PyMemberDef`` of type
``T_OBJECT_EX`` at a fixed offset in the instance). ``SlotLayout(cls, names)`` reads those offsets
once (``layout_init``), checking that ``names`` is exactly the class's field list in order and
that there is no ``__post_init__``; ``layout_new(&layout)`` allocates an instance with every slot
empty and ``cvhub_set_slot(obj, layout.offsets[i], value)`` fills field i. Every slot must be filled before the
object is handed out (an empty slot reads as AttributeError). The result is equal to, and
indistinguishable from, ``cls(**fields)``: the dataclass ``__init__`` of these classes only
assigns. Shared by ``_camt_accel`` and ``_mt940_accel``.
"""

from cpython.object cimport PyObject, PyTypeObject

cdef extern from *:
    """
    #include "structmember.h"
    /* The offset of a slot's member descriptor, or -1 if `descr` is not an object slot. */
    static Py_ssize_t cvhub_member_offset(PyObject *descr) {
        PyMemberDef *m;
        if (Py_TYPE(descr) != &PyMemberDescr_Type) return -1;
        m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type != T_OBJECT_EX || (m->flags & READONLY)) return -1;
        return m->offset;
    }
    /* Store a new reference to `v` in the slot at `off` (dropping what was there, if anything). */
    static inline void cvhub_set_slot(PyObject *obj, Py_ssize_t off, PyObject *v) {
        PyObject **p = (PyObject **)((char *)obj + off);
        PyObject *old = *p;
        Py_INCREF(v);
        *p = v;
        Py_XDECREF(old);
    }
    /* A new instance of `tp` with every slot NULL (tp_alloc zeroes the memory). */
    static PyObject *cvhub_alloc(PyTypeObject *tp) {
        return tp->tp_alloc(tp, 0);
    }
    """
    Py_ssize_t cvhub_member_offset(PyObject *descr)
    void cvhub_set_slot(object obj, Py_ssize_t off, object v)
    object cvhub_alloc(PyTypeObject *tp)  # a new reference; NULL -> the exception is raised


ctypedef struct SlotLayout:
    PyTypeObject *tp
    Py_ssize_t n
    Py_ssize_t offsets[32]


cdef inline int layout_init(SlotLayout *layout, object cls, tuple names) except -1:
    """Fill ``layout`` for ``cls``; ValueError if ``names`` is not its exact field list (in order)."""
    import dataclasses
    fields = tuple([f.name for f in dataclasses.fields(cls)])
    if fields != names or len(names) > 32:
        raise ValueError(f"{cls.__name__} fields {fields} are not the expected {names}")
    if hasattr(cls, "__post_init__") or not isinstance(cls, type):
        raise ValueError(f"{cls!r} cannot be built slot by slot")
    cdef Py_ssize_t i, off
    for i, name in enumerate(names):
        descr = cls.__dict__.get(name)
        off = -1 if descr is None else cvhub_member_offset(<PyObject *>descr)
        if off < 0:
            raise ValueError(f"{cls.__name__}.{name} is not a plain slot")
        layout.offsets[i] = off
    layout.n = len(names)
    layout.tp = <PyTypeObject *>cls
    return 0


cdef inline object layout_new(SlotLayout *layout):
    """An instance with every slot empty: the caller fills all ``layout.n`` of them."""
    return cvhub_alloc(layout.tp)
