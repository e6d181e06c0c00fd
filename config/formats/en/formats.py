# The one way hpcgate writes dates and times, in pages, the admin, e-mails and CSV files
# (core.formats reads these): "30 Nov 2026", "30 Nov 2026, 07:20 UTC".
DATE_FORMAT = "j M Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y, H:i T"
SHORT_DATETIME_FORMAT = "j M Y, H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j F"
YEAR_MONTH_FORMAT = "F Y"
FIRST_DAY_OF_WEEK = 1
