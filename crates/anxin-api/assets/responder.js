<!-- placeholder: the responder page is being written -->
