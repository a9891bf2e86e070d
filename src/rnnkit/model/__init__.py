"""The language model: embedding -> LSTM | GRU | RNN stack -> next-token logits."""
