// Move keyboard and screen-reader focus to the list of problems after a failed submit.
document.getElementById("error-summary")?.focus();
