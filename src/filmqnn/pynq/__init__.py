"""filmqnn.pynq: the board runtime (DESIGN.md §6, docs/deployment_board.md).

Board side (numpy only, Python 3.8+, copied into the deploy bundle): ``host_io`` (the host's
packing of the DDR data), ``device`` (the ``Device`` interface and the control register map),
``csim_device``, ``pynq_device``, ``bundle``, ``driver`` (``Accelerator``), ``board_main``
(``run.py``). Host side: ``deploy`` (`filmqnn deploy`), ``csim_executor`` (`filmqnn run
--device csim`).
"""
