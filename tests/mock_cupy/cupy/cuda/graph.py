"""cupy.cuda.graph.Graph: the launches a capture recorded, replayed in order."""


class Graph:
    def __init__(self, thunks: list) -> None:
        self._thunks = thunks

    def launch(self, stream=None) -> None:
        """Run the recorded work (a replay does not record into an open capture)."""
        for thunk in self._thunks:
            thunk()

    def upload(self, stream=None) -> None:
        pass
