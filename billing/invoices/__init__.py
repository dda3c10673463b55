"""Fapiao (电子发票): drivers ask for invoices of settled charging orders, the operator issues
them through an e-invoice provider (``provider.FapiaoProvider``; 诺诺 in ``nuonuo``), and a
refund of an invoiced order red-reverses it (红冲) and re-issues what remains.

Modules: ``uscc`` (tax number check digit), ``amounts`` (lines and tax, pure), ``orders``
(the port through which charging offers its settled orders), ``models``, ``services``,
``selectors``, ``pdf``, ``api/``, ``admin``, ``tasks``.
"""
