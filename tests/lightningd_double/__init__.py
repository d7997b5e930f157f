"""A test double of lightningd (tests only, not shipped): see double.py."""

from lightningd_double.double import LightningdDouble, PluginCallError
from lightningd_double.network import Network

__all__ = ["LightningdDouble", "Network", "PluginCallError"]
