# Test-only reconstruction of decentro_in_collections_client/apis/tags/__init__.py, missing
# from the decentro-in-collections-python-sdk 1.0.0 wheel (see ../README.md).
import enum


class TagValues(str, enum.Enum):
    COLLECTIONS = "Collections"
