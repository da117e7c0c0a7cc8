"""The training corpus: real footage and photos from packages the registries carry, a manifest of
every item (package, version, licence, split), synthetic camera motion over the photos, and the
loader that mixes them (`python -m oval.corpus --help`)."""
