"""Everything the front-ends show, as `Doc`s: the document model and its renderers
(`document`), how numbers and times read (`numbers`), and one module of message builders per
subject. Builders take engine reports and events and return a `Doc`; they never render."""
