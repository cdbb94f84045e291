"""Results on disk: the typed records (records.py, a leaf), run and evaluation folders
(runfolder.py, evalfolder.py, the only modules that name their files), old layouts
(legacy.py) and the results index as a DataFrame (index.py)."""
