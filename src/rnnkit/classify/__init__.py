"""The event-sequence classifier (`rnnkit classify`), one module per stage:

    events          what to read (EventSource, with its flags), what a model reads (EventSchema), what loading gives (EventTable)
    read            load_table: picks the reader for the format
    read_generic    a CSV with a header: read, checked, grouped into sequences
    csv_head        its header and first block: column names and kinds
    generic_schema  which column is the id, the order, the label, an event field
    csv_columns     pyarrow reads it in blocks into typed arrays
    bad_rows        rows that do not fit: one line naming the first, or --skip_bad_rows
    group           rows into ordered sequences, one label each
    labels_file     labels from a separate CSV
    read_yoochoose  YOOCHOOSE clicks + buys, read in chunks into typed arrays (csv_chunks)
    labels          the classes and their order; a class index per sequence
    split           the stratified, seeded split by sequence id; split.json
    encode          categorical ids and normalized numbers, truncation
    model           the LSTM, padding batches, the batch order, the weighted loss
    baseline        majority class and the bag-of-events logistic regression (scikit-learn)
    scores          accuracy, F1, per-class scores, confusion, ROC AUC (scikit-learn)
    report, plots   the printed tables; roc.png and confusion.png
    config          TrainConfig (its fields make `classify train`'s flags) and how flags, checkpoint and defaults combine
    checkpoint      a classifier's checkpoints and run folder, on the language model's code
    legacy          rnnkit 0.1's binary checkpoints, converted so predict and eval read them
    prepare         labelled, split, encoded data for training
    trainer         the LSTM's training loop: progress, metrics.jsonl, checkpoints, Ctrl-C
    evaluate        the best epoch and the baselines side by side; report.json
    train           train_classifier: the steps in order
    predict         a trained classifier: predict and evaluate files
    synth           synthetic sets whose label lives only in the order of events

Reading, encoding and splitting need NumPy and pyarrow only; torch comes in with model.py.
"""
