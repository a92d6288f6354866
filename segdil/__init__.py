"""segdil: does a full-resolution dilated network keep the small objects that pooling loses?"""

__version__ = "0.1.0"
