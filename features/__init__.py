"""Mock observations: SDSS images and HI moment maps (issue 4)."""
