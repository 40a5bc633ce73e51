"""cdtl: cross-domain transfer learning for recommender systems with pretrained language models."""

from cdtl.profiles import PROFILES, Profile, profile

__version__ = "0.1.0"

__all__ = ["PROFILES", "Profile", "profile", "__version__"]
