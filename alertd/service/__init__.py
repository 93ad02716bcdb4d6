"""The service layer: carries out core decisions inside database transactions."""
