"""A user's own Spark Connect server for notebooks: the bearer channel the notebook connects with
(:mod:`.channel`), the server's driver program (:mod:`.server`) and its idle rule (:mod:`.idle`)."""
