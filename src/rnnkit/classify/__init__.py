"""The event-sequence classifier (`rnnkit classify`), one module per stage:

    events          what to read (EventSource) and what it becomes (EventTable, EventSchema)
    read            load_table: picks the reader for the format
    read_generic    a CSV with a header, labels in a column or a separate file
    read_yoochoose  YOOCHOOSE clicks + buys, read in chunks into typed arrays
    csv_chunks      a large headerless CSV in chunks of NumPy columns (vectorized when plain)
    labels          which class is positive; 0/1 per sequence
    split           the stratified, seeded split by sequence id
    encode          categorical ids and normalized numbers, truncation
    model           the LSTM, padding batches, the loss
    baseline        the bag-of-events logistic regression
    metrics         ROC / PR AUC, accuracy, confusion
    report          the metrics table and the ROC plot
    config          TrainConfig and how flags, checkpoint and defaults combine
    run_dir         the run folder: refusing to overwrite, checkpoints, split.json
    prepare         labelled, split, encoded data for training
    train           the training loop, baselines and report
    predict         a trained classifier: predict and evaluate
    synth           a synthetic set whose label lives only in the order of events

Reading, encoding, splitting, metrics and synth need NumPy only; torch comes in with model.py.
"""
