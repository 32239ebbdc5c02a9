"""The reproduction report (chapter 6, to come): each claim of the paper against the saved runs
of chapters 1-5, with intervals, power and deviations. Reads everything below it.
"""
