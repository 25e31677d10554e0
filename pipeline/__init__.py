"""mdfs: Massive Data Filtering System - an Apache Beam corpus filtering pipeline."""
__version__ = "0.1.0"
