"""Spreadsheet import and export pages (filled in by the import/export work)."""

from django.http import HttpResponse


def customer_import(request):  # replaced by the import work
    return HttpResponse(status=501)


def customer_export(request):  # replaced by the export work
    return HttpResponse(status=501)
